"""How much of a lake's feedback was attributed to its inference when it was ingested.

Usage: python3 benches/scripts/feedback_join.py <lake>   (DuckDB, as in tests/readers/requirements.txt)

Prints the feedback rows, those stored without a model (the join found no inference), and of
those the ones whose inference is in the lake after all: feedback the daemon read before its
inference (a backlog with the logs topic ahead of the spans topic) shows up in the last figure.
"""

import sys

import duckdb


def main(lake: str) -> None:
    query = f"""
        WITH feedback AS (SELECT * FROM read_parquet('{lake}/feedback/*/*.parquet', hive_partitioning = false)),
             events AS (SELECT event_id FROM read_parquet('{lake}/events/*/*/*.parquet', hive_partitioning = false))
        SELECT count(*),
               count(*) FILTER (WHERE response_model IS NULL),
               count(*) FILTER (WHERE response_model IS NULL AND inference_id IN (SELECT event_id FROM events))
        FROM feedback
    """
    ((rows, without_model, inference_in_lake),) = duckdb.sql(query).fetchall()
    print(f"feedback rows {rows}, without a model {without_model}, of which with their inference in the lake {inference_in_lake}")


if __name__ == "__main__":
    main(sys.argv[1])
