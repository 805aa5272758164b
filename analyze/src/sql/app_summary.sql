-- Per-app fleet summary (DESIGN §7), read back from the lake.
-- Usage and cost (and the calls that could not be priced) come from `events`, latency from the rollups' histograms,
-- quality from the rollups' feedback tallies. One row per app seen anywhere.
WITH deduplicated AS (
    -- Producer retries can land one inference twice; each event_id counts once.
    -- Duplicates carry the same values, so max() just picks one of them.
    SELECT
        app,
        event_id,
        max(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS is_error,
        max(input_tokens) AS input_tokens,
        max(output_tokens) AS output_tokens,
        max(cost_usd) AS cost_usd
    FROM events
    WHERE app IS NOT NULL
    GROUP BY app, event_id
),
usage AS (
    SELECT
        app,
        count(*) AS requests,
        sum(is_error) AS errors,
        coalesce(sum(input_tokens), 0) AS input_tokens,
        coalesce(sum(output_tokens), 0) AS output_tokens,
        coalesce(sum(cost_usd), 0.0) AS cost_usd,
        -- Calls with tokens but no price (a model missing from the registry): their spend is
        -- not in cost_usd, and the reader must see that it is missing.
        sum(CASE WHEN cost_usd IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL) THEN 1 ELSE 0 END)
            AS unpriced_requests,
        -- Calls that succeeded without reporting any token count (some instrumentations' streams
        -- and embeddings): their spend is missing from cost_usd too.
        sum(CASE WHEN is_error = 0 AND input_tokens IS NULL AND output_tokens IS NULL THEN 1 ELSE 0 END)
            AS no_usage_requests
    FROM deduplicated
    GROUP BY app
),
latency AS (
    -- Merge each app's partial histograms once, then read their quantiles (µs -> ms). Time to
    -- first token is recorded for streamed answers only.
    SELECT
        app,
        hdr_quantile_of(merged, 0.5) / 1000.0 AS p50_latency_ms,
        hdr_quantile_of(merged, 0.95) / 1000.0 AS p95_latency_ms,
        hdr_quantile_of(merged, 0.99) / 1000.0 AS p99_latency_ms,
        hdr_quantile_of(merged_ttft, 0.5) / 1000.0 AS p50_ttft_ms,
        hdr_quantile_of(merged_ttft, 0.95) / 1000.0 AS p95_ttft_ms
    FROM (
        SELECT app, hdr_merge(latency_us_hist) AS merged, hdr_merge(ttft_us_hist) AS merged_ttft
        FROM rollups
        WHERE app IS NOT NULL
        GROUP BY app
    )
),
tallies AS (
    SELECT app, unnest(feedback) AS tally
    FROM rollups
    WHERE app IS NOT NULL
),
quality AS (
    -- Evaluation names match ignoring case, as ingest reads them (`Hallucination` is
    -- Phoenix's spelling); tallies keep the name as sent, so one app may have both.
    SELECT
        app,
        coalesce(sum(CASE WHEN lower(tally['name']) = 'hallucination' THEN tally['count'] END), 0) AS hallucination_evals,
        coalesce(sum(CASE WHEN lower(tally['name']) = 'hallucination' THEN tally['flagged'] END), 0) AS hallucination_flagged,
        coalesce(sum(CASE WHEN lower(tally['name']) = 'user_thumbs' THEN tally['count'] END), 0) AS thumbs_evals,
        coalesce(sum(CASE WHEN lower(tally['name']) = 'user_thumbs' THEN tally['flagged'] END), 0) AS thumbs_down,
        coalesce(sum(tally['count']), 0) AS feedback
    FROM tallies
    GROUP BY app
),
apps AS (
    SELECT app FROM usage
    UNION
    SELECT app FROM latency
    UNION
    SELECT app FROM quality
)
SELECT
    apps.app,
    coalesce(usage.requests, 0) AS requests,
    coalesce(usage.errors, 0) AS errors,
    coalesce(usage.input_tokens, 0) AS input_tokens,
    coalesce(usage.output_tokens, 0) AS output_tokens,
    coalesce(usage.cost_usd, 0.0) AS cost_usd,
    coalesce(usage.unpriced_requests, 0) AS unpriced_requests,
    coalesce(usage.no_usage_requests, 0) AS no_usage_requests,
    latency.p50_latency_ms,
    latency.p95_latency_ms,
    latency.p99_latency_ms,
    latency.p50_ttft_ms,
    latency.p95_ttft_ms,
    coalesce(quality.hallucination_evals, 0) AS hallucination_evals,
    coalesce(quality.hallucination_flagged, 0) AS hallucination_flagged,
    CASE
        WHEN coalesce(quality.hallucination_evals, 0) > 0
        THEN CAST(quality.hallucination_flagged AS DOUBLE) / CAST(quality.hallucination_evals AS DOUBLE)
    END AS hallucination_rate,
    coalesce(quality.thumbs_evals, 0) AS thumbs_evals,
    coalesce(quality.thumbs_down, 0) AS thumbs_down,
    CASE
        WHEN coalesce(quality.thumbs_evals, 0) > 0
        THEN CAST(quality.thumbs_down AS DOUBLE) / CAST(quality.thumbs_evals AS DOUBLE)
    END AS thumbs_down_rate,
    coalesce(quality.feedback, 0) AS feedback
FROM apps
LEFT JOIN usage ON usage.app = apps.app
LEFT JOIN latency ON latency.app = apps.app
LEFT JOIN quality ON quality.app = apps.app
ORDER BY cost_usd DESC, apps.app
