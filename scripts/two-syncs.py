#!/usr/bin/env python3
"""Do two fdatasyncs in flight on one WAL file complete faster than one at
a time? N writer threads, each: pwrite 128-byte record at its own next
offset of a shared zero-filled file, then fdatasync; counts syncs/s and
latency. Alternates 1 and 2 threads, ROUNDS rounds of SECS each."""
import os, sys, threading, time, statistics
path = sys.argv[1]; rounds = int(sys.argv[2]); secs = float(sys.argv[3])
size = 64 << 20
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.posix_fallocate(fd, 0, size)
os.write(fd, b"\0" * size); os.fsync(fd)
off = [0]; lock = threading.Lock()
def worker(stop, lat):
    buf = b"r" * 128
    while not stop.is_set():
        with lock:
            o = off[0]; off[0] = (off[0] + 4096) % size
        t = time.perf_counter()
        os.pwrite(fd, buf, o); os.fdatasync(fd)
        lat.append(time.perf_counter() - t)
res = {1: [], 2: []}
for r in range(rounds):
    for n in (1, 2) if r % 2 == 0 else (2, 1):
        stop = threading.Event(); lats = [[] for _ in range(n)]
        ts = [threading.Thread(target=worker, args=(stop, lats[i])) for i in range(n)]
        t0 = time.perf_counter(); [t.start() for t in ts]
        time.sleep(secs); stop.set(); [t.join() for t in ts]
        el = time.perf_counter() - t0
        all_l = sorted(sum(lats, []))
        rate = len(all_l) / el
        res[n].append((rate, all_l[len(all_l) // 2] * 1e6))
        print(f"round {r} threads {n}: {rate:.0f} syncs/s, p50 {all_l[len(all_l)//2]*1e6:.0f} us", flush=True)
ratios = [res[2][i][0] / res[1][i][0] for i in range(rounds)]
print("median syncs/s, 1 thread:", round(statistics.median(x[0] for x in res[1])),
      " 2 threads:", round(statistics.median(x[0] for x in res[2])),
      " median ratio 2/1 per round:", round(statistics.median(ratios), 2))
os.close(fd); os.unlink(path)
