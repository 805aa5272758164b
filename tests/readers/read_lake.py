#!/usr/bin/env python3
"""Read a driftwatch lake with outside tools, exactly as README.md ("Reading the lake from other
tools") tells readers to, and print what they see as JSON on stdout.

    read_lake.py <lake> <integer-looking app>

tests/lake_readers.rs runs it with the dev stack's Python (DRIFTWATCH_TEST_PYTHON: duckdb,
pyarrow, pandas, DataFusion's and polars' Python packages and hdrhistogram, pinned by
scripts/dev-stack) and compares every figure with the
same figure read through driftwatch's own DataFusion session. Nothing here is computed in a way
the README does not show: a recipe that stops working fails the test.
"""

import json
import math
import sys
import zlib

import datafusion
import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
from hdrh.histogram import HdrHistogram

# --- README recipes, verbatim -------------------------------------------------------------------

# pandas / pyarrow: `app` is both a folder key (events) and a column; take only `date` from paths.
# Files written before a column existed lack it: read with the union of every file's schema,
# widened where older files differ (times in nanoseconds, feedback tallies without `scored`).
DATE_ONLY = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")


def files_schema(lake, table):
    fragments = ds.dataset(f"{lake}/{table}", partitioning=DATE_ONLY).get_fragments()
    return pa.unify_schemas([f.physical_schema for f in fragments], promote_options="permissive")


def read_table(lake, table):
    schema = pa.unify_schemas([files_schema(lake, table), DATE_ONLY.schema], promote_options="permissive")
    return pd.read_parquet(f"{lake}/{table}", partitioning=DATE_ONLY, schema=schema, dtype_backend="pyarrow")


# DuckDB: folder keys stay text (an app named 2024 is not a number).
def duckdb_views(con, lake):
    for table, folders in [("events", "*/*"), ("feedback", "*"), ("rollups", "*"), ("dead_letter", "*")]:
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{lake}/{table}/{folders}/*.parquet', "
            "hive_partitioning = true, hive_types_autocast = false, union_by_name = true)"
        )


# DataFusion: only `date` from the paths, and the union of the files' schemas.
def datafusion_table(ctx, lake, table):
    schema = files_schema(lake, table)
    ctx.register_parquet(table, f"{lake}/{table}/", table_partition_cols=[("date", "string")], schema=schema)


# polars: takes its columns from the first file unless told; older files lack columns and store
# times in nanoseconds, so give the union schema with times in microseconds.
def in_microseconds(field):
    return field.with_type(pa.timestamp("us", field.type.tz)) if pa.types.is_timestamp(field.type) else field


def polars_scan(lake, table):
    union = files_schema(lake, table)
    schema = pl.from_arrow(pa.schema([in_microseconds(f) for f in union]).empty_table()).schema
    return pl.scan_parquet(
        f"{lake}/{table}/",
        hive_partitioning=True,
        schema=schema,
        missing_columns="insert",
        cast_options=pl.ScanCastOptions(datetime_cast="nanosecond-downcast"),
    )


# Histograms: raw V2 bytes; hdrh decodes them once zlib-compressed (b64_wrap=False: no base64).
def decode_histogram(raw):
    return HdrHistogram.decode(zlib.compress(raw), b64_wrap=False)


def merge_histograms(raws):
    merged = HdrHistogram(1, 3_600_000_000, 3)  # the lake's bounds: 1 µs to 1 h, 3 digits
    for raw in raws:
        if raw:  # empty bytes: no values in that row
            merged.add(decode_histogram(raw))
    return merged


def value_at_quantile(histogram, q):
    """driftwatch's rule (Rust hdrhistogram): the ceil(q * count)-th value, highest in its bucket."""
    rank = max(1, math.ceil(q * histogram.get_total_count()))
    seen = 0
    for index in range(histogram.counts_len):
        seen += histogram.get_count_at_index(index)
        if seen >= rank:
            return histogram.get_highest_equivalent_value(histogram.get_value_from_index(index))
    return 0


# --- The figures --------------------------------------------------------------------------------


def per_app_events_pandas(events):
    grouped = events.groupby("app").agg(
        rows=("event_id", "size"),
        input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"),
        cache_write_tokens=("cache_write_tokens", "sum"),
        cost_usd=("cost_usd", "sum"),
    )
    return {
        app: {
            "rows": int(row.rows),
            "input_tokens": int(row.input_tokens),
            "output_tokens": int(row.output_tokens),
            "cache_write_tokens": int(row.cache_write_tokens),
            "cost_usd": float(row.cost_usd),
        }
        for app, row in grouped.iterrows()
    }


def feedback_means_pandas(rollups, feedback):
    tallies = pd.DataFrame(rollups["feedback"].explode().dropna().tolist())
    tallies["name"] = tallies["name"].str.lower()
    # README: tallies written before `scored` existed are left out of a mean.
    tallies["rated_sum"] = tallies["score_sum"].where(tallies["scored"].notna())
    sums = tallies.groupby("name")[["rated_sum", "scored"]].sum()
    from_rollups = {
        name: (row.rated_sum / row.scored if row.scored else None) for name, row in sums.iterrows()
    }
    scores = feedback.assign(name=feedback["name"].str.lower()).groupby("name")["score_value"].mean()
    from_table = {name: (None if pd.isna(mean) else float(mean)) for name, mean in scores.items()}
    counts = tallies.groupby("name")[["count", "scored"]].sum()
    tally_counts = {name: {"count": int(row["count"]), "scored": int(row.scored)} for name, row in counts.iterrows()}
    return from_rollups, from_table, tally_counts


def main():
    lake, integer_app = sys.argv[1], sys.argv[2]
    out = {"pandas": {}, "duckdb": {}}

    events = read_table(lake, "events")
    feedback = read_table(lake, "feedback")
    rollups = read_table(lake, "rollups")
    dead_letter = read_table(lake, "dead_letter")
    tally_fields = rollups["feedback"].dtype.pyarrow_dtype.value_type
    if tally_fields.get_field_index("scored") < 0:
        sys.exit(f"rollups.feedback elements have no `scored` field: {tally_fields}")

    p = out["pandas"]
    p["events"] = per_app_events_pandas(events)
    p["dtypes"] = {column: str(events[column].dtype) for column in ["app", "date", "output_simhash", "cost_usd"]}
    p["max_output_simhash"] = str(events["output_simhash"].max())
    contents = [json.loads(text) for text in events["content"].dropna()]
    p["content_rows"] = len(contents)
    p["content_keys"] = sorted({",".join(sorted(doc)) for doc in contents})
    p["feedback_mean_rollups"], p["feedback_mean_table"], p["feedback_tallies"] = feedback_means_pandas(
        rollups, feedback
    )
    p["dead_letters"] = {reason: int(n) for reason, n in dead_letter.groupby("reason").size().items()}
    p["rollup_requests"] = {app: int(n) for app, n in rollups.groupby("app")["requests"].sum().items()}
    p["rollup_cache_write_tokens"] = {
        app: int(n) for app, n in rollups.groupby("app")["cache_write_tokens"].sum().items()
    }

    histograms = {}
    for app, group in rollups.groupby("app"):
        latency = merge_histograms(group["latency_us_hist"])
        ttft = merge_histograms(group["ttft_us_hist"])
        histograms[app] = {
            "latency_count": latency.get_total_count(),
            "latency_p50_us": value_at_quantile(latency, 0.5),
            "latency_p95_us": value_at_quantile(latency, 0.95),
            # hdrh's own rule (rank rounded to nearest): may be a later or earlier value.
            "latency_p95_us_hdrh": latency.get_value_at_percentile(95),
            "ttft_count": ttft.get_total_count(),
            "ttft_p50_us": value_at_quantile(ttft, 0.5) if ttft.get_total_count() else None,
        }
    out["histograms"] = histograms

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    duckdb_views(con, lake)
    d = out["duckdb"]
    d["events"] = {
        app: {
            "rows": rows,
            "input_tokens": int(i or 0),
            "output_tokens": int(o or 0),
            "cache_write_tokens": int(w or 0),
            "cost_usd": float(c or 0),
        }
        for app, rows, i, o, w, c in con.execute(
            "SELECT app, count(*), sum(input_tokens), sum(output_tokens), sum(cache_write_tokens), sum(cost_usd) "
            "FROM events GROUP BY app"
        ).fetchall()
    }
    d["rollup_cache_write_tokens"] = dict(
        con.execute("SELECT app, sum(cache_write_tokens) FROM rollups GROUP BY app").fetchall()
    )
    d["app_type"] = con.execute("SELECT DISTINCT typeof(app) FROM events").fetchall()[0][0]
    # One app's folders: with only integer-looking folder names autocast would make app a BIGINT.
    d["integer_app"] = con.execute(
        f"SELECT DISTINCT app, typeof(app) FROM read_parquet('{lake}/events/*/app={integer_app}/*.parquet', "
        "hive_partitioning = true, hive_types_autocast = false)"
    ).fetchall()
    d["feedback_mean_rollups"] = dict(
        con.execute(
            "SELECT lower(t.name), sum(t.score_sum) FILTER (WHERE t.scored IS NOT NULL) / nullif(sum(t.scored), 0) "
            "FROM (SELECT unnest(feedback) AS t FROM rollups) GROUP BY 1"
        ).fetchall()
    )
    d["feedback_mean_table"] = dict(
        con.execute("SELECT lower(name), avg(score_value) FROM feedback GROUP BY 1").fetchall()
    )
    d["dead_letters"] = dict(con.execute("SELECT reason, count(*) FROM dead_letter GROUP BY reason").fetchall())
    d["max_output_simhash"] = str(con.execute("SELECT max(output_simhash) FROM events").fetchone()[0])
    d["price_versions"] = sorted(
        v for (v,) in con.execute("SELECT DISTINCT price_version FROM events WHERE price_version IS NOT NULL").fetchall()
    )
    d["source_topics"] = sorted(v for (v,) in con.execute("SELECT DISTINCT source_topic FROM events").fetchall())
    d["dead_letter_dates"] = sorted(v for (v,) in con.execute("SELECT DISTINCT date FROM dead_letter").fetchall())

    ctx = datafusion.SessionContext()
    datafusion_table(ctx, lake, "events")
    out["datafusion"] = {"events": {
        row["app"]: {
            "rows": row["rows"],
            "input_tokens": int(row["input_tokens"] or 0),
            "output_tokens": int(row["output_tokens"] or 0),
            "cache_write_tokens": int(row["cache_write_tokens"] or 0),
            "cost_usd": float(row["cost_usd"] or 0),
        }
        for row in ctx.sql(
            "SELECT app, count(*) AS rows, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
            "sum(cache_write_tokens) AS cache_write_tokens, sum(cost_usd) AS cost_usd FROM events GROUP BY app"
        ).to_pylist()
    }}
    grouped = (
        polars_scan(lake, "events")
        .group_by("app")
        .agg(
            pl.len().alias("rows"),
            pl.col("input_tokens").sum(),
            pl.col("output_tokens").sum(),
            pl.col("cache_write_tokens").sum(),
            pl.col("cost_usd").sum(),
        )
        .collect()
    )
    out["polars"] = {"events": {
        row["app"]: {key: row[key] for key in ["rows", "input_tokens", "output_tokens", "cache_write_tokens", "cost_usd"]}
        for row in grouped.iter_rows(named=True)
    }}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
