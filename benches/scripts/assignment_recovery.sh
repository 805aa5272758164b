#!/usr/bin/env bash
# Assignment recovery over a distant object store (and broker): how long a daemon takes from its
# start to ready (every assigned partition recovered from the lake, measured against its log and
# positioned) when its lake is on S3 DELAY_MS away. Starts its own Tansu broker and s3s-fs (the
# dev stack's binaries) behind benches/scripts/latency_proxy.py, creates three topics of
# PARTITIONS partitions each, and starts the daemon twice over a new lake: the first start claims
# every partition, the second finds the first's checkpoints, as after a restart or a rebalance.
# With KAFKA_DELAY_MS, the broker is behind a second proxy too (it advertises the proxy), as a
# cluster in another zone or region would be; every Kafka request then waits that much longer.
#
# Usage (after `scripts/dev-stack up`, which builds Tansu and s3s-fs, and a build):
#   benches/scripts/assignment_recovery.sh PARTITIONS DELAY_MS [KAFKA_DELAY_MS]
#   e.g. benches/scripts/assignment_recovery.sh 16 20
# DRIFTWATCH_BIN (default target/debug/driftwatch under CARGO_TARGET_DIR or ./target) selects
# the binary. Loopback ports 29092 (Tansu), 29093 (its proxy), 29000 (s3s-fs), 29001 (proxy)
# and 29464 must be free.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    sed -n '2,17p' "$0"
    exit 2
fi
partitions=$1 delay_ms=$2 kafka_delay_ms=${3:-}
cd "$(dirname "$0")/../.."
eval "$(scripts/dev-stack env)"
target=${CARGO_TARGET_DIR:-target}
bin=${DRIFTWATCH_BIN:-$target/debug/driftwatch}
[ -x "$bin" ] || { echo "no binary at $bin: cargo build, or set DRIFTWATCH_BIN" >&2; exit 2; }

# A previous run's processes may take a moment to release the ports.
for _ in $(seq 100); do
    ss -ltn | grep -qE '127.0.0.1:(29092|29093|29000|29001|29464) ' || break
    sleep 0.1
done

dir=$(mktemp -d /tmp/assignment-recovery.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
# Clients reach the broker at the address it advertises: the proxy's, when there is one.
brokers=127.0.0.1:29092
if [ -n "$kafka_delay_ms" ]; then
    brokers=127.0.0.1:29093
    python3 benches/scripts/latency_proxy.py 29093 29092 "$kafka_delay_ms" > "$dir/kafka-proxy.log" 2>&1 &
    pids+=($!)
fi
"$DRIFTWATCH_TEST_TANSU" broker --listener-url tcp://127.0.0.1:29092 \
    --advertised-listener-url "tcp://$brokers" --storage-engine memory://tansu/ > "$dir/tansu.log" 2>&1 &
pids+=($!)
mkdir -p "$dir/s3/lake"
RUST_LOG=warn "$DRIFTWATCH_TEST_S3S_FS" --host 127.0.0.1 --port 29000 --access-key driftwatch \
    --secret-key driftwatch-secret "$dir/s3" > "$dir/s3.log" 2>&1 &
pids+=($!)
python3 benches/scripts/latency_proxy.py 29001 29000 "$delay_ms" > "$dir/proxy.log" 2>&1 &
pids+=($!)
sleep 2

prefix="ar$(date +%s)_"
"$bin" loadgen --brokers "$brokers" --topic-prefix "$prefix" --create-partitions "$partitions" \
    --inferences 1 --producer-property batch.num.messages=1 > "$dir/truth.json" 2> "$dir/loadgen.log"
cat > "$dir/config.toml" <<CONFIG
[lake]
location = "s3://lake/$prefix"

[lake.options]
aws_access_key_id = "driftwatch"
aws_secret_access_key = "driftwatch-secret"
aws_region = "us-east-1"
aws_endpoint = "http://127.0.0.1:29001"
aws_allow_http = "true"
aws_virtual_hosted_style_request = "false"

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

[http]
listen = "127.0.0.1:29464"
CONFIG

for start in first second; do
    began=$(date +%s.%N)
    "$bin" ingest --config "$dir/config.toml" > "$dir/ingest-$start.log" 2>&1 &
    daemon=$!
    until curl -sf -o /dev/null 127.0.0.1:29464/readyz; do
        kill -0 "$daemon" 2>/dev/null || { echo "daemon exited; see $dir/ingest-$start.log" >&2; exit 1; }
        sleep 0.05
    done
    ready=$(date +%s.%N)
    recovered=$(grep -c "Partition assigned" "$dir/ingest-$start.log" || true)
    echo "$start start: ready in $(awk -v a="$began" -v b="$ready" 'BEGIN { printf "%.2f", b - a }') s," \
        "$recovered partitions recovered, lake ${delay_ms} ms away${kafka_delay_ms:+, broker $kafka_delay_ms ms away}"
    kill -TERM "$daemon"
    wait "$daemon" || true
done
echo "logs and config in $dir"
