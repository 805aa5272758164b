-- Row counts per lake table: the health line under the fleet summary.
-- `distinct_events` below `events` means producer retries left duplicates. An event is its
-- event_id within its app, as ingest deduplicates and app_summary counts them.
SELECT
    (SELECT count(*) FROM events) AS events,
    (SELECT count(*) FROM (SELECT DISTINCT app, event_id FROM events)) AS distinct_events,
    (SELECT count(*) FROM feedback) AS feedback,
    (SELECT count(*) FROM rollups) AS rollup_rows,
    (SELECT count(*) FROM dead_letter) AS dead_letters
