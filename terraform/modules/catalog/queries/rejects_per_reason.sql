-- Rejects per reason: rejected records per reason ("field: problem"), and the file versions they came from.
-- A record rejected for two reasons counts under each.
SELECT reason, count(*) AS rejected_records, count(DISTINCT source_key || '@' || source_version) AS files
FROM rejects
CROSS JOIN UNNEST(reasons) AS r (reason)
GROUP BY reason
ORDER BY rejected_records DESC, reason
