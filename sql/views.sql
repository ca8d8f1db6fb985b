-- DuckDB views over a lokiarrow store. Set the root first, e.g.:
--   SET VARIABLE root = '/path/to/data/fake';
-- streams: one row per stream, chunk file and metadata set (the index); chunks: the entries;
-- logs: entries with labels.
-- Only live files count: an index file the compactor wrote names, in its footer
-- (lokiarrow.supersedes), the index files it replaces, and the chunk files only those named stay
-- on disk until the compactor deletes them (store/compactor.py).
CREATE OR REPLACE VIEW superseded AS
  SELECT DISTINCT regexp_extract(unnest(from_json(decode(value), '["VARCHAR"]')), 'index/.*$') AS file
  FROM parquet_kv_metadata(getvariable('root') || '/index/day=*/*.parquet')
  WHERE decode(key) = 'lokiarrow.supersedes';
CREATE OR REPLACE VIEW streams AS
  SELECT * EXCLUDE (filename)
  FROM read_parquet(getvariable('root') || '/index/day=*/*.parquet', hive_partitioning = true,
                    union_by_name = true, filename = true)  -- older index files have no metadata column
  WHERE regexp_extract(filename, 'index/.*$') NOT IN (SELECT file FROM superseded);
CREATE OR REPLACE VIEW chunks AS
  SELECT * EXCLUDE (filename)
  FROM read_parquet(getvariable('root') || '/chunks/day=*/*.parquet', hive_partitioning = true,
                    union_by_name = true, filename = true)  -- files differ in their parsed-field columns
  WHERE regexp_extract(filename, 'chunks/.*$') IN (SELECT DISTINCT regexp_extract(chunk, 'chunks/.*$') FROM streams);
CREATE OR REPLACE VIEW logs AS
  SELECT c.stream_id, s.labels, make_timestamp_ns(c.ts) AS time, c.ts, c.line, c.metadata, c.day
  FROM chunks c JOIN (SELECT DISTINCT stream_id, labels FROM streams) s USING (stream_id);
