-- Loads per day: per ingest date (the S3 event's date) and dataset, the source file versions that reached the
-- curated zone and the rows they brought (every row written, before the later-event-wins merge).
SELECT ingest_date, dataset, count(DISTINCT source_key || '@' || source_version) AS files, count(*) AS records
FROM (
  SELECT ingest_date, 'users' AS dataset, source_key, source_version FROM users
  UNION ALL
  SELECT ingest_date, 'events' AS dataset, source_key, source_version FROM events
) AS loads
GROUP BY ingest_date, dataset
ORDER BY ingest_date, dataset
