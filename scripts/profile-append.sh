#!/usr/bin/env bash
# Profiles the append path of a local 3-member cluster: runs
# `corelog bench --local-cluster 3` with the given options, attaches perf to
# the three member processes (not the load generator) for PROFILE_SECS of the
# measured load, and prints the CPU per acknowledged record, event counts per
# record, and the CPU broken down by layer (scripts/perf_layers.py).
#
# Usage: scripts/profile-append.sh OUTDIR [corelog bench options...]
#   e.g. scripts/profile-append.sh /tmp/prof-a --records-per-request 64 --connections 4 --inflight 64
# Environment: PROFILE_SECS (default 4), CORELOG (default target/release/corelog),
#   PERF_FREQ (default 999), PERF_RECORD=0 to count only (no call graphs).
set -euo pipefail
out=${1:?usage: profile-append.sh OUTDIR [bench options...]}
shift
secs=${PROFILE_SECS:-4}
bin=${CORELOG:-target/release/corelog}
freq=${PERF_FREQ:-999}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)

# The load runs 2 s longer than the window on each side.
"$bin" bench --local-cluster 3 --warmup 1 --seconds $((secs + 3)) --quiet --json "$@" \
  >"$out/bench.json" 2>"$out/bench.err" &
bench=$!
trap 'kill $bench 2>/dev/null || true' EXIT
sleep 2
pids=$(pgrep -P "$bench" | paste -sd, -)
if [ "$(echo "$pids" | tr ',' '\n' | grep -c .)" != 3 ]; then
  echo "expected 3 members under the bench (pid $bench), found: $pids" >&2
  exit 1
fi
events=task-clock,context-switches,raw_syscalls:sys_enter,sched:sched_wakeup,io_uring:io_uring_submit_req,io_uring:io_uring_queue_async_work
perf stat -x, -e "$events" -p "$pids" -o "$out/stat.csv" -- sleep "$secs" &
stat=$!
if [ "${PERF_RECORD:-1}" != 0 ]; then
  perf record -q -F "$freq" --call-graph dwarf,8192 -p "$pids" -o "$out/perf.data" -- sleep "$secs" 2>/dev/null
fi
wait $stat
wait $bench
trap - EXIT

# Records acknowledged during the window: the run's rate times the window.
rate=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records_per_s"])' "$out/bench.json")
records=$(python3 -c "print($rate * $secs)")
cpu_ms=$(awk -F, '$3=="task-clock"{print $1}' "$out/stat.csv")
python3 - "$out/bench.json" "$cpu_ms" "$secs" "$records" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
cpu_ms, secs, records = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
l = j["latency_us"]
print(f"bench: {j['records_per_s']:.0f} records/s, {j['requests_per_s']:.0f} requests/s, "
      f"p50 {l['p50']} us, p99 {l['p99']} us, {j['errors_total']} errors")
print(f"members over {secs:.0f} s: {cpu_ms / 1000 / secs:.2f} CPUs, "
      f"{cpu_ms * 1e6 / records:.0f} ns of CPU per acknowledged record (all three)")
PY
awk -F, -v r="$records" '$1 ~ /^[0-9.]+$/ && $3 != "task-clock" {printf "  %-36s %10.3f per record\n", $3, $1 / r}' "$out/stat.csv"
if [ "${PERF_RECORD:-1}" != 0 ]; then
  perf script -i "$out/perf.data" -F comm,tid,period,ip,sym,dso --no-inline 2>/dev/null >"$out/perf.txt"
  python3 "$here/perf_layers.py" --cpu-ms "$cpu_ms" --records "$records" --top "${TOP:-30}" <"$out/perf.txt"
fi
