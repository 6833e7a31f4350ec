#!/usr/bin/env bash
# corelog against etcd on this machine (issue 9), 128-byte values, fsync on
# both sides, 3 members on 127.0.0.1 each, never both clusters at once:
#  1. etcd (Debian's etcd-server, installed when missing): a fresh 3-member
#     cluster in temporary directories, loaded by tools/vs-etcd's etcd-load
#     (the etcd-client crate) with one Put per request, 1 and 256 in
#     flight; then stopped and removed.
#  2. corelog: `corelog bench --local-cluster 3` (our client; each run its
#     own fresh cluster, removed after) with one record per request, 1 and
#     256 in flight, and at its best: 64 records per request, 256 in flight.
# Prints every report, then exactly:
#   throughput ratio (1 record per request): X   corelog / etcd at 256 in flight
#   throughput ratio (batched): Y                corelog at its best / etcd's best run
#   p99 ratio (1 in flight): Z                   corelog's p99 / etcd's (lower is better)
#
# Knobs (environment): SECONDS_PER_RUN (5), WARMUP (1), DOC (a markdown file to
# write the result into between the bench-vs-etcd markers; unset: none).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
WARMUP=${WARMUP:-1}
DOC=${DOC:-}
OUT=$(mktemp -d -t corelog-vs-etcd.XXXXXX)

apt_install() {
    echo "bench-vs-etcd: installing $* (Debian packages)" >&2
    apt-get install -y "$@" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; }
}
command -v etcd >/dev/null || apt_install etcd-server
command -v jq >/dev/null || apt_install jq
# etcd-client's build compiles etcd's .proto files with protoc.
command -v protoc >/dev/null || apt_install protobuf-compiler

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release --bin corelog >&2
# tools/vs-etcd is a workspace of its own, with its own lock file.
cargo build --release --manifest-path tools/vs-etcd/Cargo.toml --target-dir "$TARGET/vs-etcd" >&2
CORELOG=$TARGET/release/corelog
ETCD_LOAD=$TARGET/vs-etcd/release/etcd-load

# Six free ports on 127.0.0.1 (nothing answers on them now).
free_port() {
    while :; do
        local p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${PORTS[*]:-} " != *" $p "* ]]; then
            echo "$p"
            return
        fi
    done
}
PORTS=()
for _ in 1 2 3 4 5 6; do PORTS+=("$(free_port)"); done

ETCD_PIDS=()
stop_etcd() {
    for p in "${ETCD_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for p in "${ETCD_PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    ETCD_PIDS=()
}
trap 'stop_etcd; rm -rf "$OUT"' EXIT

# summary FILE: the report of one run, from its JSON.
summary() {
    jq -r '"\(.tool) (\(.workload)): \(.members) members, \(.groups) group(s), \(.connections) connection(s) x \(.inflight) in flight, \(.records_per_request) x \(.record_bytes) B per request\n  \(.records_per_s | round) records/s, \(.mb_per_s * 100 | round / 100) MB/s, \(.requests_per_s | round) requests/s, \(.errors_total) failed\n  latency: p50 \(.latency_us.p50 / 1000) ms, p90 \(.latency_us.p90 / 1000) ms, p99 \(.latency_us.p99 / 1000) ms, p99.9 \(.latency_us.p99_9 / 1000) ms, p99.99 \(.latency_us.p99_99 / 1000) ms, max \(.latency_us.max / 1000) ms\n  load generator: \(.client_cpu_s * 100 | round / 100) s of CPU in \(.client_wall_s * 100 | round / 100) s"' "$1"
}

# --- etcd -----------------------------------------------------------------
echo "== etcd $(etcd --version | head -1 | awk '{print $3}'): 3 members on 127.0.0.1" >&2
cluster=""
endpoints=""
for i in 1 2 3; do
    peer=${PORTS[$((i - 1))]}
    cluster+="${cluster:+,}e$i=http://127.0.0.1:$peer"
done
for i in 1 2 3; do
    peer=${PORTS[$((i - 1))]}
    client=${PORTS[$((i + 2))]}
    endpoints+="${endpoints:+,}http://127.0.0.1:$client"
    mkdir -p "$OUT/etcd$i"
    etcd --name "e$i" --data-dir "$OUT/etcd$i" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token corelog-vs-etcd \
        >"$OUT/etcd$i.log" 2>&1 &
    ETCD_PIDS+=($!)
done
"$ETCD_LOAD" --endpoints "$endpoints" --wait 30 || { tail -20 "$OUT"/etcd*.log >&2; exit 1; }

E=(--endpoints "$endpoints" --value-bytes 128 --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --json)
"$ETCD_LOAD" "${E[@]}" --connections 1 --inflight 1 >"$OUT/etcd-1.json" || true
"$ETCD_LOAD" "${E[@]}" --connections 4 --inflight 64 >"$OUT/etcd-256.json" || true
stop_etcd
rm -rf "$OUT"/etcd[123]

# --- corelog --------------------------------------------------------------
C=(bench --local-cluster 3 --record-bytes 128 --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --quiet --json)
echo "== corelog: 3 members on 127.0.0.1 (each run its own cluster)" >&2
"$CORELOG" "${C[@]}" --groups 1 --connections 1 --inflight 1 --records-per-request 1 >"$OUT/corelog-1.json" || true
"$CORELOG" "${C[@]}" --groups 3 --connections 4 --inflight 64 --records-per-request 1 >"$OUT/corelog-256.json" || true
"$CORELOG" "${C[@]}" --groups 3 --connections 4 --inflight 64 --records-per-request 64 >"$OUT/corelog-best.json" || true

for f in etcd-1 etcd-256 corelog-1 corelog-256 corelog-best; do
    [ -s "$OUT/$f.json" ] || { echo "bench-vs-etcd: the $f run printed no report" >&2; exit 1; }
done

report=$(
    echo "etcd, one Put per request, 1 in flight:"; summary "$OUT/etcd-1.json"
    echo "etcd, one Put per request, 256 in flight:"; summary "$OUT/etcd-256.json"
    echo "corelog, one record per request, 1 in flight:"; summary "$OUT/corelog-1.json"
    echo "corelog, one record per request, 256 in flight:"; summary "$OUT/corelog-256.json"
    echo "corelog at its best, 64 records per request, 256 in flight:"; summary "$OUT/corelog-best.json"
)
ratios=$(jq -rn \
    --slurpfile e1 "$OUT/etcd-1.json" --slurpfile e256 "$OUT/etcd-256.json" \
    --slurpfile c1 "$OUT/corelog-1.json" --slurpfile c256 "$OUT/corelog-256.json" \
    --slurpfile cb "$OUT/corelog-best.json" '
    def r: . * 100 | round / 100;
    ([$e1[0].records_per_s, $e256[0].records_per_s] | max) as $ebest |
    "throughput ratio (1 record per request): \($c256[0].records_per_s / $e256[0].records_per_s | r)",
    "throughput ratio (batched): \($cb[0].records_per_s / $ebest | r)",
    "p99 ratio (1 in flight): \($c1[0].latency_us.p99 / $e1[0].latency_us.p99 | r)"')
echo "$report"
echo "$ratios"

if [ -n "$DOC" ]; then
    section=$(cat <<MD
<!-- bench-vs-etcd begin: written by scripts/bench-vs-etcd.sh -->
Run on $(date -u '+%Y-%m-%d %H:%M UTC') at commit $(git rev-parse --short HEAD), etcd $(etcd --version | head -1 | awk '{print $3}'),
$(nproc) CPUs, ${SECONDS_PER_RUN} s per run after ${WARMUP} s warm-up:

\`\`\`
$report
$ratios
\`\`\`
<!-- bench-vs-etcd end -->
MD
)
    if grep -q '^<!-- bench-vs-etcd begin' "$DOC"; then
        awk -v new="$section" '
            /^<!-- bench-vs-etcd begin/ { print new; skip = 1; next }
            /^<!-- bench-vs-etcd end/ { skip = 0; next }
            !skip { print }' "$DOC" >"$DOC.tmp"
        mv "$DOC.tmp" "$DOC"
    else
        printf '\n%s\n' "$section" >>"$DOC"
    fi
    echo "bench-vs-etcd: wrote the result into $DOC" >&2
fi
