#!/usr/bin/env bash
# The standard benchmark of corelog (issue 9), on this machine:
#  - the append matrix on a local 3-member cluster, fsync on: records of
#    128 B, 1 KiB and 4 KiB; 1 and 64 records per request; 1 and 64 groups;
#  - catch-up reads: at least 1 GiB appended, then read back by one consumer;
#  - tails following live appends (append-to-delivery latency);
#  - shard scaling: one member, 1 shard against 2 shards, 64 groups.
# Every cell is one `corelog bench ... --json` run (its own fresh cluster);
# the table goes into docs/benchmarks.md between the bench.sh markers,
# with the machine's description and the date. The JSON of each cell is
# kept in $OUT (default: a temporary directory, printed at the end).
#
# Knobs (environment): CELL_SECONDS (5), WARMUP (1), CONNECTIONS (2),
# INFLIGHT (64: requests in flight per connection), READ_BYTES (1 GiB),
# DOC (docs/benchmarks.md; DOC=- prints the section instead).
set -euo pipefail
cd "$(dirname "$0")/.."

CELL_SECONDS=${CELL_SECONDS:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-2}
INFLIGHT=${INFLIGHT:-64}
READ_BYTES=${READ_BYTES:-1073741824}
DOC=${DOC:-docs/benchmarks.md}
OUT=${OUT:-$(mktemp -d -t corelog-bench-sh.XXXXXX)}
mkdir -p "$OUT"

if ! command -v jq >/dev/null; then
    echo "bench.sh: installing jq (Debian package)" >&2
    apt-get install -y jq >/dev/null || { apt-get update >/dev/null && apt-get install -y jq >/dev/null; }
fi

cargo build --release --bin corelog >&2
BIN=${CARGO_TARGET_DIR:-target}/release/corelog

# run NAME ARGS...: one bench run, its JSON in $OUT/NAME.json. A run that
# reports errors exits 1 but still printed its JSON: the table shows them.
run() {
    local name=$1
    shift
    echo "== $name: corelog bench $*" >&2
    if ! "$BIN" bench --quiet --json "$@" >"$OUT/$name.json"; then
        echo "   (exited non-zero; see the errors column)" >&2
    fi
    [ -s "$OUT/$name.json" ] || { echo "bench.sh: $name printed no report" >&2; exit 1; }
}

ms() { jq -r "$1 / 1000 | . * 100 | round / 100" "$2"; }

# row FILE LABEL [JQ-PATH]: one table row of a report.
row() {
    local f=$1 label=$2 p=${3:-.}
    local j
    j=$(jq -c "$p" "$f")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
        "$(jq -r '.records_per_s | round' <<<"$j")" \
        "$(jq -r '.mb_per_s * 10 | round / 10' <<<"$j")" \
        "$(jq -r '.requests_per_s | round' <<<"$j")" \
        "$(ms .latency_us.p50 <(echo "$j"))" \
        "$(ms .latency_us.p99 <(echo "$j"))" \
        "$(ms .latency_us.p99_9 <(echo "$j"))" \
        "$(ms .latency_us.max <(echo "$j"))" \
        "$(jq -r '.errors_total' <<<"$j")"
}

HEAD='| run | records/s | MB/s | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
LOAD=(--connections "$CONNECTIONS" --inflight "$INFLIGHT" --seconds "$CELL_SECONDS" --warmup "$WARMUP")

matrix=""
for bytes in 128 1024 4096; do
    for per in 1 64; do
        for groups in 1 64; do
            name="append-${bytes}B-x${per}-g${groups}"
            run "$name" --local-cluster 3 --groups "$groups" --record-bytes "$bytes" \
                --records-per-request "$per" "${LOAD[@]}"
            matrix+="$(row "$OUT/$name.json" "$bytes B x $per per request, $groups group$([ "$groups" = 1 ] || echo s)")"$'\n'
        done
    done
done

run catch-up --local-cluster 3 --workload catch-up --read-bytes "$READ_BYTES" --groups 1 \
    --connections 1 --inflight "$INFLIGHT" --records-per-request 64 --record-bytes 4096
catchup="$(row "$OUT/catch-up.json" "fill: append 64 x 4 KiB per request, 1 group" .fill)"$'\n'
catchup+="$(row "$OUT/catch-up.json" "read back: 1 consumer, from offset 0 (latency per read answer)")"$'\n'

run tail --local-cluster 3 --workload tail --groups 4 --record-bytes 128 --records-per-request 64 \
    "${LOAD[@]}"
tails="$(row "$OUT/tail.json" "appends: 64 x 128 B per request, 4 groups" .append)"$'\n'
tails+="$(row "$OUT/tail.json" "tails: one per group (latency append sent to record delivered)")"$'\n'

shards=""
for s in 1 2; do
    run "shards-$s" --local-cluster 1 --shards "$s" --groups 64 --record-bytes 128 \
        --records-per-request 64 "${LOAD[@]}"
    shards+="$(row "$OUT/shards-$s.json" "1 member, $s shard$([ "$s" = 1 ] || echo s), 64 groups, 64 x 128 B per request")"$'\n'
done
ratio=$(jq -n --slurpfile a "$OUT/shards-1.json" --slurpfile b "$OUT/shards-2.json" \
    '$b[0].records_per_s / $a[0].records_per_s * 100 | round / 100')

disk_dev=$(df --output=source "${TMPDIR:-/tmp}" | tail -1)
section=$(cat <<MD
<!-- bench.sh begin: written by scripts/bench.sh; edit the script, not this -->
### scripts/bench.sh: the standard matrix

Run on $(date -u '+%Y-%m-%d %H:%M UTC') at commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes in src)').
Machine: $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/{print $2}') GiB,
data on \`$disk_dev\` ($(df -h --output=fstype,size "${TMPDIR:-/tmp}" | tail -1 | awk '{print $1 ", " $2}')), Linux $(uname -r).
Every run starts its own cluster on 127.0.0.1 (\`--cpus none\`: the
members' threads and the bench's share all CPUs), fsync on. Append runs:
closed loop, $CONNECTIONS connections x $INFLIGHT requests in flight, ${WARMUP} s warm-up, then
$CELL_SECONDS s measured. Latency is per request (send to acknowledgement).

Appends, 3 members:

$HEAD
$matrix
Catch-up reads, 3 members ($(jq -r '.bytes / 1048576 | round' "$OUT/catch-up.json") MiB of records read back):

$HEAD
$catchup
Tails following live appends, 3 members:

$HEAD
$tails
Shard scaling, one member (2 shards / 1 shard: **$ratio**):

$HEAD
$shards
Command: \`CELL_SECONDS=$CELL_SECONDS scripts/bench.sh\`.
<!-- bench.sh end -->
MD
)

if [ "$DOC" = "-" ]; then
    echo "$section"
else
    if grep -q '^<!-- bench.sh begin' "$DOC"; then
        # Replace the old section.
        awk -v new="$section" '
            /^<!-- bench.sh begin/ { print new; skip = 1; next }
            /^<!-- bench.sh end/ { skip = 0; next }
            !skip { print }' "$DOC" >"$DOC.tmp"
        mv "$DOC.tmp" "$DOC"
    else
        printf '\n%s\n' "$section" >>"$DOC"
    fi
    echo "bench.sh: wrote the table into $DOC" >&2
fi
echo "bench.sh: each run's JSON is in $OUT" >&2
