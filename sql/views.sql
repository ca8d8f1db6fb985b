-- DuckDB views over a lokiarrow store. Set the root first, e.g.:
--   SET VARIABLE root = '/path/to/data/fake';
-- streams: one row per stream, chunk file and metadata set (the index); chunks: the entries;
-- logs: entries with labels.
CREATE OR REPLACE VIEW streams AS
  SELECT * FROM read_parquet(getvariable('root') || '/index/day=*/*.parquet', hive_partitioning = true,
                             union_by_name = true);  -- older index files have no metadata column
CREATE OR REPLACE VIEW chunks AS
  SELECT * FROM read_parquet(getvariable('root') || '/chunks/day=*/*.parquet', hive_partitioning = true,
                             union_by_name = true);  -- files differ in their parsed-field columns
CREATE OR REPLACE VIEW logs AS
  SELECT c.stream_id, s.labels, make_timestamp_ns(c.ts) AS time, c.ts, c.line, c.metadata, c.day
  FROM chunks c JOIN (SELECT DISTINCT stream_id, labels FROM streams) s USING (stream_id);
