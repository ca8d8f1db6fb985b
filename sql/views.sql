-- DuckDB views over a lokiarrow store, and a few macros. Set the store's data folder first (and a
-- tenant, or '*' for all of them):
--   SET VARIABLE root = '/path/to/data'; SET VARIABLE tenant = 'fake';
-- (the tenant is part of a glob: lokiarrow.api.views refuses ids such as '../x' and writes a `*`
-- of an id as '[*]', so that one tenant's views read that tenant's folder only)
-- streams: one row per stream, chunk file and metadata set (the index); chunks: the entries as
-- stored; logs: the entries with their tenant, day, time and labels. A filter on `day` reads only
-- that day's files (the folders are hive partitions); one on `ts` (ns), such as
-- `ts >= epoch_ns(TIMESTAMP '2026-01-19 10:00')`, reads only the row groups of that span (files keep
-- ts statistics). `timestamp` is computed from ts: a filter on it reads everything, so for a time
-- span use logs_between(since, until) (below), which adds both filters. (DuckDB still opens the
-- first file of the folder pattern to learn the columns.)
-- Only live files count: an index file the compactor wrote names, in its footer
-- (lokiarrow.supersedes), the index files it replaces, and the chunk files only those named stay
-- on disk until the compactor deletes them (store/compactor.py).
CREATE OR REPLACE VIEW superseded AS
  SELECT DISTINCT regexp_extract(unnest(from_json(decode(value), '["VARCHAR"]')), '[^/]+/index/.*$') AS file
  FROM parquet_kv_metadata(getvariable('root') || '/' || getvariable('tenant') || '/index/day=*/*.parquet')
  WHERE decode(key) = 'lokiarrow.supersedes';
CREATE OR REPLACE VIEW streams AS
  SELECT regexp_extract(filename, '([^/]+)/index/day=', 1) AS tenant, * EXCLUDE (filename)
  FROM read_parquet(getvariable('root') || '/' || getvariable('tenant') || '/index/day=*/*.parquet',
                    hive_partitioning = true, union_by_name = true, filename = true)  -- older files lack metadata
  WHERE regexp_extract(filename, '[^/]+/index/.*$') NOT IN (SELECT file FROM superseded);
CREATE OR REPLACE VIEW chunks AS
  SELECT regexp_extract(filename, '([^/]+)/chunks/day=', 1) AS tenant, * EXCLUDE (filename)
  FROM read_parquet(getvariable('root') || '/' || getvariable('tenant') || '/chunks/day=*/*.parquet',
                    hive_partitioning = true, union_by_name = true, filename = true)  -- field columns differ
  WHERE regexp_extract(filename, '[^/]+/chunks/.*$') IN (SELECT DISTINCT chunk FROM streams);
-- logs reads the columns every chunk file has, without union_by_name (which opens every file to
-- merge schemas), so that a filter on `day` skips the other days' files
CREATE OR REPLACE VIEW logs AS
  SELECT c.tenant, c.day, make_timestamp_ns(c.ts) AS timestamp, c.ts, c.stream_id, s.labels, c.line, c.metadata
  FROM (SELECT regexp_extract(filename, '([^/]+)/chunks/day=', 1) AS tenant, day, ts, stream_id, line, metadata
        FROM read_parquet(getvariable('root') || '/' || getvariable('tenant') || '/chunks/day=*/*.parquet',
                          hive_partitioning = true, filename = true)
        WHERE regexp_extract(filename, '[^/]+/chunks/.*$') IN (SELECT DISTINCT chunk FROM streams)) c
  JOIN (SELECT DISTINCT tenant, stream_id, labels FROM streams) s USING (tenant, stream_id);

-- logql_labels(stream_id): a stream's labels as LogQL writes them, e.g. {app="web", env="prod"}
CREATE OR REPLACE MACRO logql_labels(sid) AS (SELECT any_value(labels) FROM streams WHERE stream_id = sid);
-- label(labels, name): one label's value from that text ('' when the stream has none)
CREATE OR REPLACE MACRO label(labels, name) AS
  regexp_extract(labels, '(?:\{|, )' || name || '="((?:[^"\\]|\\.)*)"', 1);
-- json_field(line, path): a field of a JSON line ('a' or 'a.b'), NULL when the line is not JSON
CREATE OR REPLACE MACRO json_field(line, path) AS
  CASE WHEN json_valid(line) THEN json_extract_string(line, '$.' || path) END;
-- level(line): the line's level, as Loki's detected_level reads JSON and logfmt lines ('unknown')
CREATE OR REPLACE MACRO level(line) AS lower(coalesce(
  nullif(regexp_extract(line, '"(?:level|lvl|severity|LEVEL|Level)"\s*:\s*"([A-Za-z]+)"', 1), ''),
  nullif(regexp_extract(line, '(?:^|\s)(?:level|lvl|severity)=([A-Za-z]+)', 1), ''),
  'unknown'));
-- logs_between(since, until): the logs of [since, until) (timestamps), reading only the days
-- (folders) and row groups of that span: FROM logs_between(TIMESTAMP '2026-01-19 22:00', now())
CREATE OR REPLACE MACRO logs_between(since, until) AS TABLE
  SELECT * FROM logs
  WHERE day BETWEEN CAST(since AS DATE) AND CAST(until AS DATE)
    AND ts >= epoch_ns(CAST(since AS TIMESTAMP)) AND ts < epoch_ns(CAST(until AS TIMESTAMP));
