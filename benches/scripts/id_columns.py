#!/usr/bin/env python3
"""What the events table's id columns cost: bytes per row and writer CPU.

Reads every events file of a lake (for example `driftwatch demo --dir /tmp/demo1`, then
`/tmp/demo1/lake`), prints each column's compressed bytes per row in our own files, and writes
the rows again with pyarrow under the lake's settings (zstd level 1, 200 000-row row groups, and
each column's dictionary or DELTA_BINARY_PACKED encoding as the lake's own files carry it) in
three variants: as they are, with the trace and span ids and the content hashes as fixed-size
binary, and without `event_id`. Measurement for a schema decision (benches/README.md, "Tenth
session"), not a benchmark of our writer.

Usage: python3 benches/scripts/id_columns.py LAKE_DIR   (needs `pip install pyarrow`)
"""

import glob
import io
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

# Hex widths as the lake writes them: 128-bit trace ids and content hashes, 64-bit span ids.
BINARY = [("trace_id", 16), ("span_id", 8), ("input_hash", 16), ("output_hash", 16)]


def read_lake(files):
    """The rows of every file, each column's compressed bytes, and the encodings the lake's writer
    chose per column (read from the files, so they follow lake/src/parquet.rs as it changes)."""
    tables, sizes, dictionary, delta = [], {}, set(), set()
    for path in files:
        parquet_file = pq.ParquetFile(path)
        tables.append(parquet_file.read())
        meta = parquet_file.metadata
        for group in range(meta.num_row_groups):
            for index in range(meta.num_columns):
                chunk = meta.row_group(group).column(index)
                name = chunk.path_in_schema
                sizes[name] = sizes.get(name, 0) + chunk.total_compressed_size
                if any("DICTIONARY" in encoding for encoding in chunk.encodings):
                    dictionary.add(name)
                if "DELTA_BINARY_PACKED" in chunk.encodings:
                    delta.add(name)
    return pa.concat_tables(tables), sizes, dictionary, delta


def print_column_bytes(sizes, rows):
    total = sum(sizes.values())
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {name:20s} {size / rows:6.1f} B/row {100 * size / total:5.1f} %")
    print(f"  {'all columns':20s} {total / rows:6.1f} B/row")


def as_binary(table):
    for name, width in BINARY:
        hex_values = table.column(name).to_pylist()
        misfits = sum(1 for v in hex_values if v is not None and len(v) != 2 * width)
        if misfits:
            sys.exit(f"{misfits} values of {name} are not {width} bytes of hex; no fixed-size variant")
        values = [None if v is None else bytes.fromhex(v) for v in hex_values]
        index = table.column_names.index(name)
        table = table.set_column(index, pa.field(name, pa.binary(width)), pa.array(values, pa.binary(width)))
    return table


def write(table, dictionary, delta):
    buffer = io.BytesIO()
    names = set(table.column_names)
    pq.write_table(table, buffer, compression="zstd", compression_level=1,
                   use_dictionary=sorted(dictionary & names),
                   column_encoding={name: "DELTA_BINARY_PACKED" for name in delta & names},
                   row_group_size=200_000, write_statistics=True)
    return buffer.getbuffer().nbytes


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    files = sorted(glob.glob(f"{sys.argv[1]}/events/**/*.parquet", recursive=True))
    if not files:
        sys.exit(f"no events files under {sys.argv[1]}/events")
    table, sizes, dictionary, delta = read_lake(files)
    print(f"{table.num_rows} rows in {len(files)} files; compressed bytes of the largest columns:")
    print_column_bytes(sizes, table.num_rows)
    print(f"as the lake writes them: dictionary on {len(dictionary)} columns, "
          f"DELTA_BINARY_PACKED on {', '.join(sorted(delta)) or 'none'}")
    spans = sum(1 for event_id, trace, span in zip(*(table.column(c).to_pylist() for c in
                ("event_id", "trace_id", "span_id"))) if trace and span and event_id == trace + span)
    print(f"event_id equal to trace_id || span_id: {spans / table.num_rows:.0%} of rows")
    for label, variant in [("as the lake has them", table),
                           ("trace/span ids and hashes as fixed-size binary", as_binary(table)),
                           ("without event_id", table.drop_columns(["event_id"]))]:
        best = None
        for _ in range(7):
            start = time.process_time()
            size = write(variant, dictionary, delta)
            spent = time.process_time() - start
            best = spent if best is None else min(best, spent)
        print(f"{label:48s} {size / variant.num_rows:6.1f} B/row, writer CPU {best / variant.num_rows * 1e9:6.0f} ns/row")


if __name__ == "__main__":
    main()
