#!/usr/bin/env bash
# Fleet scale: how many lake files, how much memory and how large a /metrics scrape a fleet of
# APPS apps makes. Produces INFERENCES calls over three topics of PARTITIONS partitions each
# (loadgen, mixed formats), ingests them with `flush.max_age = MAX_AGE`, and prints the files
# per table with their median size, the daemon's peak RSS, the scrape's series, bytes and time,
# and how long `analyze summary` takes over the lake.
#
# Usage (after `scripts/dev-stack up` and a release build):
#   benches/scripts/fleet_scale.sh APPS PARTITIONS INFERENCES MAX_AGE
#   e.g. benches/scripts/fleet_scale.sh 300 16 100000 10s
# DRIFTWATCH_BIN (default target/release/driftwatch under CARGO_TARGET_DIR or ./target) and
# DRIFTWATCH_TEST_KAFKA (from `scripts/dev-stack env`) select the binary and the broker.
# Everything it writes is under a new temporary folder, printed at the end; topics are named
# `fs<epoch>_*` so that runs never share one.
set -euo pipefail

if [ $# -ne 4 ]; then
    sed -n '2,13p' "$0"
    exit 2
fi
apps=$1 partitions=$2 inferences=$3 max_age=$4
target=${CARGO_TARGET_DIR:-target}
bin=${DRIFTWATCH_BIN:-$target/release/driftwatch}
brokers=${DRIFTWATCH_TEST_KAFKA:?run scripts/dev-stack up and eval "\$(scripts/dev-stack env)" first}
port=${DRIFTWATCH_FLEET_PORT:-19631}
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release, or set DRIFTWATCH_BIN" >&2; exit 2; }

dir=$(mktemp -d /tmp/fleet-scale.XXXXXX)
prefix="fs$(date +%s)_"
cat > "$dir/config.toml" <<CONFIG
[lake]
location = "$dir/lake"

[kafka]
brokers = "$brokers"
group_id = "${prefix}group"

[[kafka.topics]]
name = "${prefix}otlp_spans"
format = "otlp_traces"

[[kafka.topics]]
name = "${prefix}otlp_logs"
format = "otlp_logs"

[[kafka.topics]]
name = "${prefix}llm_events"
format = "json_events"

[flush]
max_age = "$max_age"

[http]
listen = "127.0.0.1:$port"
CONFIG

# The whole backlog first: the daemon then reads as fast as it can, as after an outage.
"$bin" loadgen --brokers "$brokers" --topic-prefix "$prefix" --create-partitions "$partitions" \
    --apps "$apps" --inferences "$inferences" --producer-property batch.num.messages=1 \
    --producer-property linger.ms=0 > "$dir/truth.json" 2> "$dir/loadgen.log"

"$bin" ingest --config "$dir/config.toml" > "$dir/ingest.log" 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true' EXIT

# Every call is in the lake once the events rows written reach the inferences produced.
metric() { grep -E "^$1 " "$dir/metrics" | awk '{print $2}' | head -1; }
deadline=$((SECONDS + 1800))
while :; do
    sleep 2
    curl -sf -o "$dir/metrics" "127.0.0.1:$port/metrics" || continue
    written=$(metric 'driftwatch_lake_rows_written_total\{kind="events"\}')
    [ "${written%.*}" -ge "$inferences" ] 2>/dev/null && break
    [ $SECONDS -lt $deadline ] || { echo "timed out with ${written:-0} of $inferences rows" >&2; exit 1; }
done
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")
scrape=$(curl -s -o "$dir/metrics" -w '%{time_total} %{size_download}' "127.0.0.1:$port/metrics")
series=$(grep -vc '^#' "$dir/metrics")
kill -TERM "$daemon"
wait "$daemon" || true
trap - EXIT

echo "fleet: $apps apps, $partitions partitions per topic, $inferences calls, flush.max_age $max_age"
for table in events rollups feedback dead_letter; do
    if [ -d "$dir/lake/$table" ]; then
        find "$dir/lake/$table" -name '*.parquet' -printf '%s\n' | sort -n | awk -v table="$table" '
            { size[NR] = $1; total += $1 }
            END { if (NR == 0) { printf "%-12s 0 files\n", table; exit }
                  printf "%-12s %7d files, median %6.1f KB, total %7.1f MB\n", table, NR,
                         size[int((NR + 1) / 2)] / 1000, total / 1e6 }'
    else
        printf '%-12s %7d files\n' "$table" 0
    fi
done
echo "daemon peak RSS: $((peak_kib / 1024)) MiB"
read -r scrape_s scrape_bytes <<< "$scrape"
echo "/metrics: $series series, $((scrape_bytes / 1000)) KB, ${scrape_s} s"
start=$(date +%s.%N)
"$bin" analyze summary --lake "$dir/lake" > "$dir/summary.txt"
echo "analyze summary: $(awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { printf "%.2f", end - start }') s"
echo "files, logs and config in $dir"
