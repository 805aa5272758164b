#!/usr/bin/env python3
"""What the events table's id columns cost: bytes per row and writer CPU.

Reads every events file of a lake (for example `driftwatch demo --dir /tmp/demo1`, then
`/tmp/demo1/lake`), prints each column's compressed bytes per row in our own files, and writes
the rows again with pyarrow under the lake's settings (zstd level 1, no dictionary on the
unique columns, 200 000-row row groups) in three variants: as they are, with the trace and span
ids and the content hashes as fixed-size binary, and without `event_id`. Measurement for a
schema decision (benches/README.md, "Tenth session"), not a benchmark of our writer.

Usage: python3 benches/scripts/id_columns.py LAKE_DIR   (needs `pip install pyarrow`)
"""

import glob
import io
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

# lake/src/parquet.rs, EVENTS_UNIQUE_COLUMNS: written without a dictionary.
UNIQUE = {"event_id", "trace_id", "span_id", "response_id", "input_hash", "output_hash", "output_simhash",
          "time", "start_time", "latency_ms", "ttft_ms", "source_offset", "content"}
BINARY = [("trace_id", 16), ("span_id", 8), ("input_hash", 32), ("output_hash", 32)]


def column_bytes(files, rows):
    sizes = {}
    for path in files:
        meta = pq.ParquetFile(path).metadata
        for group in range(meta.num_row_groups):
            for index in range(meta.num_columns):
                chunk = meta.row_group(group).column(index)
                sizes[chunk.path_in_schema] = sizes.get(chunk.path_in_schema, 0) + chunk.total_compressed_size
    total = sum(sizes.values())
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {name:20s} {size / rows:6.1f} B/row {100 * size / total:5.1f} %")
    print(f"  {'all columns':20s} {total / rows:6.1f} B/row")


def as_binary(table):
    for name, width in BINARY:
        values = [bytes.fromhex(v) if v is not None and len(v) == 2 * width else None
                  for v in table.column(name).to_pylist()]
        index = table.column_names.index(name)
        table = table.set_column(index, pa.field(name, pa.binary(width)), pa.array(values, pa.binary(width)))
    return table


def write(table):
    buffer = io.BytesIO()
    dictionary = [name for name in table.column_names if name not in UNIQUE]
    pq.write_table(table, buffer, compression="zstd", compression_level=1, use_dictionary=dictionary,
                   row_group_size=200_000, write_statistics=True)
    return buffer.getbuffer().nbytes


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    files = sorted(glob.glob(f"{sys.argv[1]}/events/**/*.parquet", recursive=True))
    if not files:
        sys.exit(f"no events files under {sys.argv[1]}/events")
    table = pa.concat_tables([pq.read_table(path, partitioning=None) for path in files])
    print(f"{table.num_rows} rows in {len(files)} files; compressed bytes of the largest columns:")
    column_bytes(files, table.num_rows)
    spans = sum(1 for event_id, trace, span in zip(*(table.column(c).to_pylist() for c in
                ("event_id", "trace_id", "span_id"))) if trace and span and event_id == trace + span)
    print(f"event_id equal to trace_id || span_id: {spans / table.num_rows:.0%} of rows")
    for label, variant in [("as the lake has them", table),
                           ("trace/span ids and hashes as fixed-size binary", as_binary(table)),
                           ("without event_id", table.drop_columns(["event_id"]))]:
        best = None
        for _ in range(7):
            start = time.process_time()
            size = write(variant)
            spent = time.process_time() - start
            best = spent if best is None else min(best, spent)
        print(f"{label:48s} {size / variant.num_rows:6.1f} B/row, writer CPU {best / variant.num_rows * 1e9:6.0f} ns/row")


if __name__ == "__main__":
    main()
