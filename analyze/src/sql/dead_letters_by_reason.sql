-- Rejected input per machine-readable reason (a missing reason reads as '').
SELECT
    coalesce(reason, '') AS reason,
    count(*) AS dead_letters
FROM dead_letter
GROUP BY coalesce(reason, '')
ORDER BY reason
