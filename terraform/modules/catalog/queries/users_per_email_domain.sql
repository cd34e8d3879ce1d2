-- Users per email domain. The current version of each user only: the later S3 event wins (greatest
-- source_order; within one file the later line), as in the table.
WITH ranked AS (
  SELECT
    coalesce(email_domain, lower(regexp_extract(email, '@([^@]+)$', 1))) AS domain_name,
    row_number() OVER (PARTITION BY user_id ORDER BY source_order DESC, source_line DESC) AS version_rank
  FROM users
)
SELECT domain_name AS email_domain, count(*) AS users
FROM ranked
WHERE version_rank = 1
GROUP BY domain_name
ORDER BY users DESC, email_domain
