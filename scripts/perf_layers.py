#!/usr/bin/env python3
"""Breaks a perf profile of corelog members down by layer of the append path.

Reads `perf script -F comm,tid,period,ip,sym,dso` output (with call chains)
on stdin and assigns each sample to one layer:

- allocation: the innermost user frame is the allocator (malloc, free, ...);
- copies: the innermost user frame is memcpy/memmove (a copy, whoever made it);
- kernel samples by what brought the thread in: the syscall in the chain
  (socket send, socket receive, io_uring_enter, epoll/futex waits), an
  io-wq worker (the WAL's writes and fdatasyncs), page faults, the
  scheduler (context switches: the cost of wakeups), interrupts;
- other user samples by the innermost frame of ours (corelog::<module>,
  glommio::), skipping generic frames (core, alloc, std, bytes, prost,
  hashbrown, crc32fast), which belong to whoever called them.

Prints each layer's share of the samples and, given the CPU time and the
records acknowledged over the profiled window (`--cpu-ms`, `--records`),
its CPU nanoseconds per record.
"""

import argparse
import re
import sys
from collections import Counter

ALLOC = re.compile(
    r"^(malloc|free|cfree|realloc|calloc|_int_malloc|_int_free|_int_realloc|"
    r"malloc_consolidate|unlink_chunk|tcache_\w+|__libc_(malloc|free|realloc|calloc)|"
    r"__rust_(alloc|dealloc|realloc|alloc_zeroed)|alloc::alloc::\w+|"
    r"sysmalloc|__default_morecore|brk|__brk)"
)
COPY = re.compile(r"^__(memmove|memcpy|memset)\w*|^(memcpy|memmove|memset)")
GENERIC = re.compile(
    r"^(<)?(core::|alloc::|std::|bytes::|prost::|hashbrown::|crc32fast::|"
    r"<?&|<alloc|<core|<std|<bytes|<prost|<hashbrown|__rust|rust_|_start|main$|"
    r"__libc_start|start_thread|clone3?$)"
)

# Our modules, by the layer the brief names; first match wins.
OURS = [
    (re.compile(r"corelog::(server::(conn|listener|answer_wire)|protocol::)"), "client protocol (decode, answer)"),
    (re.compile(r"corelog::(server::log_apply|log::)"), "log apply"),
    (re.compile(r"corelog::raft::"), "raft step/ready"),
    (re.compile(r"corelog::wal::"), "WAL encode/flush"),
    (re.compile(r"corelog::transport::|corelog::shard::net_peers"), "transport encode/decode"),
    (re.compile(r"corelog::(shard::|node::|server::)"), "shard loop, node, waiters"),
    (re.compile(r"glommio::"), "glommio reactor, tasks"),
    (re.compile(r"corelog::"), "corelog other"),
]

SYSCALLS = [
    (re.compile(r"tcp_sendmsg|sock_sendmsg|__sys_sendmsg|sock_write_iter|do_writev"), "kernel: socket send"),
    (re.compile(r"tcp_recvmsg|sock_recvmsg|__sys_recvmsg|sock_read_iter|__sys_recvfrom"), "kernel: socket receive"),
    (re.compile(r"io_uring_enter|io_submit_sqes|io_issue_sqe"), "kernel: io_uring (submit, task work)"),
    (re.compile(r"epoll_wait|do_epoll|futex|__x64_sys_poll|do_sys_poll|nanosleep|eventfd_(read|write)"), "kernel: waits, eventfd, futex"),
    (re.compile(r"fdatasync|vfs_fsync|ext4_sync|__x64_sys_pwrite|ext4_file_write"), "kernel: disk (write, fdatasync)"),
    (re.compile(r"exc_page_fault|do_user_addr_fault|handle_mm_fault"), "kernel: page faults"),
    (re.compile(r"__x64_sys_mmap|__x64_sys_munmap|__x64_sys_madvise|__x64_sys_brk"), "kernel: mmap/munmap/brk"),
]


def classify(comm, frames):
    """frames: [(sym, dso)] innermost first."""
    if comm.startswith("iou-wrk"):
        return "kernel: disk (io-wq worker)"
    if not frames:
        return "unknown"
    leaf_kernel = frames[0][1].startswith("[kernel")
    if leaf_kernel:
        chain = " ".join(s for s, d in frames if d.startswith("[kernel"))
        for pat, name in SYSCALLS:
            if pat.search(chain):
                return name
        if re.search(r"schedule|finish_task_switch|__switch_to|try_to_wake_up|ttwu|do_idle|pick_next", chain):
            return "kernel: scheduler, wakeups"
        if re.search(r"irq|softirq|apic|interrupt", chain):
            return "kernel: interrupts (incl. loopback softirq)"
        return "kernel: other"
    user = [(s, d) for s, d in frames if not d.startswith("[kernel")]
    s0 = user[0][0]
    if ALLOC.search(s0):
        return "allocation (malloc/free)"
    if COPY.search(s0):
        return "copies (memcpy/memmove)"
    for s, _ in user:
        if GENERIC.search(s) and not s.startswith("<corelog") and "corelog::" not in s.split(" as ")[0]:
            continue
        for pat, name in OURS:
            if pat.search(s):
                return name
        if s.startswith("[unknown]") or s == "":
            continue
        if "vdso" in _ or s.startswith("__vdso"):
            return "vdso (clock reads)"
        if "libc" in _:
            continue
    if "vdso" in user[0][1]:
        return "vdso (clock reads)"
    return "other user (libc, unresolved)"


def parse(stream):
    comm = None
    period = 1
    frames = []
    for line in stream:
        line = line.rstrip("\n")
        if not line:
            if comm is not None:
                yield comm, period, frames
            comm, frames = None, []
            continue
        if not line.startswith((" ", "\t")):
            # header: comm tid period:
            parts = line.split()
            comm = parts[0]
            period = int(parts[-1].rstrip(":")) if len(parts) >= 3 else 1
            continue
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
        if m:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            frames.append((sym, m.group(2)))
    if comm is not None:
        yield comm, period, frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-ms", type=float, default=0.0)
    ap.add_argument("--records", type=float, default=0.0)
    ap.add_argument("--top", type=int, default=0, help="also print the top N leaf symbols")
    a = ap.parse_args()
    layers = Counter()
    leaves = Counter()
    total = 0
    for comm, period, frames in parse(sys.stdin):
        layer = classify(comm, frames)
        layers[layer] += period
        total += period
        if frames:
            leaves[frames[0][0][:90]] += period
    if total == 0:
        sys.exit("no samples")
    per = a.cpu_ms * 1e6 / a.records if a.records else 0.0
    print(f"samples (period sum) {total}; CPU {a.cpu_ms:.0f} ms; records {a.records:.0f}; "
          f"CPU per record {per:.0f} ns (all members)")
    print("| layer | share | ns per record |")
    print("| --- | ---: | ---: |")
    for name, v in layers.most_common():
        print(f"| {name} | {100.0 * v / total:.1f}% | {per * v / total:.0f} |")
    if a.top:
        print()
        for s, v in leaves.most_common(a.top):
            print(f"{100.0 * v / total:5.1f}%  {s}")


if __name__ == "__main__":
    main()
