"""fastdrop.dask throughput and memory: three measurements, each in a fresh process.

    python bench/bench_dask.py                      # small defaults (a few minutes at most)
    python bench/bench_dask.py --elements 268435456 --mc-rows 100000 --disk-elements 1073741824
    python bench/bench_dask.py --only dropout       # one of: dropout, mc, disk

1. dropout: `fastdrop.dask.dropout` of a float32 dask array (``--elements``, chunks of
   ``--chunk``) stored into a preallocated NumPy array, against dask's own ``x * 2`` on the
   same chunks and scheduler (threads); interleaved rounds, medians, the ratio.
2. mc: `fastdrop.dask.mc_predict` of the 784-1024-1024-10 MLP (dropout 0.2 on the input,
   0.5 on the hidden layers) on ``--mc-rows`` inputs, T = ``--mc-T``, on a LocalCluster of 1
   and of 2 worker processes (one thread each), against the in-memory
   `fastdrop.theory.mc_predict` in this process; inputs x passes per second, and each
   worker's peak RSS.
3. disk: a float32 file of ``--disk-elements`` elements in /tmp, read chunk by chunk,
   dropped out and written chunk by chunk to a second file with ``da.store``; throughput
   and the process's peak RSS (``ru_maxrss``), which stays at a few chunks, not the file.
   (The file was just written, so it is mostly read from the page cache.)
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

if __name__ == "__main__":  # run as a script: use the tree's fastdrop, not an installed one
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

SIZES = (784, 1024, 1024, 10)
SEED = 20240601


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def bench_dropout(args):
    import dask.array as da

    import fastdrop.dask as fdd
    from fastdrop import config

    x_np = np.full(args.elements, 1.5, np.float32)
    out = np.empty_like(x_np)
    x = da.from_array(x_np, chunks=args.chunk)
    ops = {"fastdrop.dask.dropout": lambda: fdd.dropout(x, 0.5, seed=SEED),
           "dask x * 2": lambda: x * 2}
    times = {name: [] for name in ops}
    out.fill(0)  # fault the output's pages in before timing
    with config.threads(1):  # one kernel thread per task, as NumPy's x * 2
        for op in ops.values():  # warm-up, untimed
            da.store(op(), out, lock=False, scheduler="threads")
        for _ in range(args.rounds):
            for name, op in ops.items():
                start = time.perf_counter()
                da.store(op(), out, lock=False, scheduler="threads")
                times[name].append(time.perf_counter() - start)
    med = {name: float(np.median(t)) for name, t in times.items()}
    gib = x_np.nbytes / 2**30
    return {"elements": args.elements, "chunk": args.chunk, "rounds": args.rounds,
            "seconds": med, "GiB/s": {n: gib / t for n, t in med.items()},
            "ratio dropout / (x * 2)": med["fastdrop.dask.dropout"] / med["dask x * 2"],
            "peak_rss_mib": peak_rss_mib()}


def bench_mc(args):
    import dask.array as da
    from distributed import Client, LocalCluster

    import fastdrop.dask as fdd
    from fastdrop import theory
    from fastdrop.nn import build_mlp

    model = build_mlp(SIZES, input_rate=0.2, hidden_rate=0.5, seed=SEED)
    X_np = np.random.default_rng(SEED).random((args.mc_rows, SIZES[0]), dtype=np.float32)
    row_passes = args.mc_rows * args.mc_T
    result = {"rows": args.mc_rows, "T": args.mc_T, "row_chunk": args.mc_chunk}
    start = time.perf_counter()
    theory.mc_predict(model, X_np, args.mc_T, seed=SEED)
    seconds = time.perf_counter() - start
    result["in-memory"] = {"seconds": seconds, "inputs x passes / s": row_passes / seconds}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None, silence_logs=40) as cluster, \
                Client(cluster, timeout=120) as client:
            client.wait_for_workers(workers, timeout=120)
            X = da.from_array(X_np, chunks=(args.mc_chunk, -1))
            X = client.persist(X)  # the inputs live on the workers, as they would
            client.wait_for_workers(workers, timeout=120)
            start = time.perf_counter()
            mc = fdd.mc_predict(model, X, args.mc_T, seed=SEED)
            client.compute(mc.mean).result(timeout=3600)
            seconds = time.perf_counter() - start
            rss = client.run(peak_rss_mib)
            result[f"{workers} worker(s)"] = {
                "seconds": seconds, "inputs x passes / s": row_passes / seconds,
                "worker peak RSS MiB": sorted(rss.values())}
    return result


class RawFile:
    """A 1-D float32 file read and written by byte ranges (no mapping, so only the chunks
    in flight are in memory)."""

    def __init__(self, path, size, mode):
        self.shape, self.dtype, self.ndim = (size,), np.dtype(np.float32), 1
        self.fd = os.open(path, mode)

    def __getitem__(self, key):
        (part,) = key if isinstance(key, tuple) else (key,)
        start, stop, _ = part.indices(self.shape[0])
        out = np.empty(stop - start, self.dtype)
        view, offset = memoryview(out).cast("B"), start * 4
        while view:
            n = os.preadv(self.fd, [view], offset)
            view, offset = view[n:], offset + n
        return out

    def __setitem__(self, key, value):
        (part,) = key if isinstance(key, tuple) else (key,)
        start, _, _ = part.indices(self.shape[0])
        data = memoryview(np.ascontiguousarray(value, self.dtype)).cast("B")
        offset = start * 4
        while data:
            n = os.pwrite(self.fd, data, offset)
            data, offset = data[n:], offset + n


def bench_disk(args):
    import dask.array as da

    import fastdrop
    import fastdrop.dask as fdd

    with tempfile.TemporaryDirectory(dir=args.tmp) as where:
        src, dst = os.path.join(where, "x.f32"), os.path.join(where, "y.f32")
        source = RawFile(src, args.disk_elements, os.O_RDWR | os.O_CREAT)
        block = np.full(args.chunk, 0.75, np.float32)
        for start in range(0, args.disk_elements, args.chunk):
            stop = min(start + args.chunk, args.disk_elements)
            source[start:stop] = block[:stop - start]
        del block
        target = RawFile(dst, args.disk_elements, os.O_RDWR | os.O_CREAT)
        x = da.from_array(source, chunks=args.chunk, asarray=False, lock=False,
                          meta=np.empty(0, np.float32))
        rss_before = peak_rss_mib()
        start = time.perf_counter()
        da.store(fdd.dropout(x, 0.5, seed=SEED), target, lock=False, scheduler="threads")
        seconds = time.perf_counter() - start
        expected = fastdrop.dropout(np.full(1024, 0.75, np.float32), 0.5, seed=SEED)
        assert np.array_equal(target[0:1024], expected)  # the first chunk's bits
        gib = args.disk_elements * 4 / 2**30
        return {"elements": args.disk_elements, "GiB": gib, "chunk": args.chunk,
                "seconds": seconds, "GiB/s": gib / seconds,
                "peak_rss_mib_before_store": rss_before, "peak_rss_mib": peak_rss_mib()}


PARTS = {"dropout": bench_dropout, "mc": bench_mc, "disk": bench_disk}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--elements", type=int, default=2**26)
    parser.add_argument("--chunk", type=int, default=2**24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mc-rows", type=int, default=10_000)
    parser.add_argument("--mc-T", type=int, default=20)
    parser.add_argument("--mc-chunk", type=int, default=2_000)
    parser.add_argument("--disk-elements", type=int, default=2**27)
    parser.add_argument("--tmp", default=tempfile.gettempdir())
    parser.add_argument("--only", choices=sorted(PARTS))
    args = parser.parse_args(argv)
    if args.only:
        print(json.dumps(PARTS[args.only](args)))
        return
    results = {}
    for part in PARTS:  # each in a fresh process: its own peak RSS
        run = subprocess.run([sys.executable, os.path.abspath(__file__), "--only", part]
                             + (argv if argv is not None else sys.argv[1:]),
                             capture_output=True, text=True, timeout=4 * 3600)
        if run.returncode != 0:
            results[part] = {"error": run.stderr[-2000:]}
        else:
            results[part] = json.loads(run.stdout.strip().splitlines()[-1])
        print(part, json.dumps(results[part], indent=1), flush=True)


if __name__ == "__main__":
    main()
