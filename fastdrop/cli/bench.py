"""`fastdrop bench`: a quick report of the kernels' speed next to NumPy and the peers.

For every dtype and size one set of arrays is built and every implementation is timed on
those same arrays in interleaved rounds (`fastdrop.cli.timing`); each figure is the median
over rounds and every ratio divides two medians of the same run.  The report has four parts:

- throughput per (dtype, size): time per call, Gelem/s, GB/s (bytes read + written: x and
  y, plus the 1-bit-per-element mask where one is written or read) and the time ratio to
  ``np.multiply(x, 2.0, out=y)`` on the same arrays, and to the floor: ``y = 2x`` compiled
  into the extension and run on fastdrop's own thread pool and chunking at the same thread
  count (one NumPy thread is not the limit of the machine; this pass is);
- the headline ratios at the largest size, over np.multiply and over the floor, one column
  per thread count;
- small calls: a 1024-element float32 call of every public function over ``np.multiply``
  on the same array (the fixed cost of a call);
- SIMD levels: forward float32 with mask bits at every level this machine can run, at
  2^16 (in cache) and 2^24 (streaming) elements by default, over np.multiply and the floor;
- the mask stream: at every level, on 1 thread and the largest thread count, forward
  float32 with bits and the backward that regenerates the mask at rates 0.2 (8 bit planes
  and ties) and 0.5 (one plane), and `sample_mask` at rate 0.5, over the floor at the same
  thread count, at 2^17 (in cache) and 2^24 (streaming) elements by default.

torch and jax are optional peers, imported only when installed and timed on float32;
matplotlib (``--plot``) is optional too.  Pass/miss verdicts against the project's targets
are not part of the library: ``python bench/targets.py`` in a source tree runs this report
and judges it.
"""
import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastdrop
from fastdrop import _kernels, config

from .timing import interleaved_times

SEED = 20240601
RATE = 0.5
DTYPES = ("float32", "float64")
DEFAULT_SIZES = "10,16,20,24"
QUICK_SIZES = "10,16,20"
DEFAULT_LEVEL_SIZES = "16,24"
QUICK_LEVEL_SIZES = "16,20"
DEFAULT_STREAM_SIZES = "17,24"
QUICK_STREAM_SIZES = "17,20"
#: Rates of the mask-stream table: 0.2 needs all 8 bit planes and resolves ties, 0.5 one plane.
STREAM_RATES = (0.2, 0.5)
#: (key, what) of the mask-stream table's cells; sample_mask at rate 0.5 only.
STREAM_OPS = (("forward", "dropout forward f32, bits written"),
              ("backward_regen", "dropout_backward regenerating the mask"),
              ("sample_mask", "sample_mask"))
DEFAULT_ROUNDS = 7
MAX_EXPONENT = 28
EXPONENT_LIMIT = 40          # a bare number up to this is an exponent of 2, above it a size
REFERENCE_MAX_SIZE = 1 << 20  # fastdrop.reference takes about a second per call at 2^24
SMALL_CALL_SIZE = 1024
PEERS = ("torch", "jax")
NOT_FASTDROP = ("np.multiply", "np.copyto", "reference") + PEERS
FLOOR = "floor"  # y = 2x on fastdrop's threads: timed at every thread count of every group
#: The public functions of the small-calls group, in the order they are printed.
SMALL_CALLS = ("dropout", "dropout+bits", "sample_mask", "apply_mask", "backward_mask",
               "backward_regen", "alpha_dropout", "alpha_backward", "gaussian_dropout",
               "gaussian_backward")
#: (key, what, dtype, numerator, denominator): time(numerator) / time(denominator).
RATIOS = (
    ("forward_f32_bits", "dropout forward f32, bits written / np.multiply", "float32",
     "dropout+bits", "np.multiply"),
    ("forward_f64_bits", "dropout forward f64, bits written / np.multiply f64", "float64",
     "dropout+bits", "np.multiply"),
    ("apply_mask", "apply_mask (backward from bits) / np.multiply", "float32",
     "apply_mask", "np.multiply"),
    ("backward_regen", "dropout_backward regenerating / np.multiply", "float32",
     "backward_regen", "np.multiply"),
    ("vs_reference", "x faster than fastdrop.reference", "float32", "reference", "dropout"),
    ("vs_torch", "x faster than torch.nn.functional.dropout", "float32", "torch", "dropout"),
    ("vs_jax", "x faster than jitted jax bernoulli+where", "float32", "jax", "dropout"),
)


# -- options ----------------------------------------------------------------------------------

def _parse_one_size(token):
    text = token.strip().lower().replace("**", "^")
    try:
        if "^" in text:
            base, exponent = (int(part) for part in text.split("^", 1))
            if base < 2 or exponent < 0:
                raise ValueError
            size = base ** exponent
        elif "e" in text:
            mantissa, exponent = text.split("e", 1)
            size = int(mantissa) * 10 ** int(exponent)
        else:
            value = int(text)
            size = 1 << value if 0 <= value <= EXPONENT_LIMIT else value
    except ValueError:
        raise ValueError(f"{token.strip()!r} is not an exponent (e.g. 20), a power "
                         f"(2^20, 1e3) or a size (65536)") from None
    if size < 1:
        raise ValueError(f"{token.strip()!r} gives an empty array")
    if size > 1 << MAX_EXPONENT:
        raise ValueError(f"{token.strip()!r} is larger than 2^{MAX_EXPONENT} elements")
    return size


def parse_sizes(text):
    """Element counts from "10,16,20" (a number up to 40 is an exponent of 2), "2^20",
    "1e3" or "65536" (a larger number is a count); sorted, without duplicates."""
    sizes = sorted({_parse_one_size(token) for token in text.split(",")})
    if not sizes:
        raise ValueError("no sizes given")
    return sizes


def parse_threads(text):
    """Thread counts from "1,2" (each at least 1); sorted, without duplicates."""
    counts = set()
    for token in text.split(","):
        try:
            count = int(token.strip())
        except ValueError:
            raise ValueError(f"{token.strip()!r} is not an integer") from None
        if count < 1:
            raise ValueError(f"thread counts must be at least 1, got {count}")
        counts.add(count)
    return sorted(counts)


def parse_rounds(text):
    try:
        rounds = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None
    if rounds < 1:
        raise ValueError(f"must be at least 1, got {rounds}")
    return rounds


def _option(parse):
    def convert(text):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__.replace("parse_", "")
    return convert


def add_arguments(parser):
    parser.add_argument(
        "--sizes", type=_option(parse_sizes), default=None,
        help=f"comma-separated sizes: a number up to {EXPONENT_LIMIT} is an exponent of 2 "
             f"(20 = 2^20 elements), a larger one an element count; 2^k and 1e3 work too; at "
             f"most 2^{MAX_EXPONENT} (default {DEFAULT_SIZES})")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both",
                        help="element type of the throughput tables (default both)")
    parser.add_argument(
        "--threads", type=_option(parse_threads), default=None,
        help="comma-separated thread counts for the fastdrop kernels (default 1 and "
             "fastdrop's default); the small calls and SIMD levels run at the largest")
    parser.add_argument("--level-sizes", type=_option(parse_sizes), default=None,
                        help=f"sizes of the SIMD-level table, as --sizes "
                             f"(default {DEFAULT_LEVEL_SIZES})")
    parser.add_argument("--stream-sizes", type=_option(parse_sizes), default=None,
                        help=f"sizes of the mask-stream table, as --sizes "
                             f"(default {DEFAULT_STREAM_SIZES})")
    parser.add_argument("--rounds", type=_option(parse_rounds), default=DEFAULT_ROUNDS,
                        help=f"interleaved timed rounds; the median is reported "
                             f"(default {DEFAULT_ROUNDS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"a shorter run: sizes {QUICK_SIZES} and level sizes "
                             f"{QUICK_LEVEL_SIZES} unless given")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip torch and jax even if they are installed")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress lines on stderr")
    parser.add_argument("--json", metavar="OUT.json", default=None,
                        help="also write every timing and ratio to this JSON file")
    parser.add_argument("--markdown", metavar="OUT.md", default=None,
                        help="also write the report's tables as Markdown")
    parser.add_argument("--plot", metavar="OUT.png", default=None,
                        help="also plot throughput against size (log-log; needs matplotlib)")


# -- what is timed ----------------------------------------------------------------------------

class Arrays:
    """The inputs every implementation of one (dtype, size) group works on."""

    def __init__(self, dtype, size):
        self.dtype = np.dtype(dtype)
        self.size = size
        self.x = np.random.default_rng(SEED).standard_normal(size, dtype=self.dtype)
        self.y = np.zeros_like(self.x)  # zeros, not empty: its pages are touched now
        self.mask = fastdrop.sample_mask(size, RATE, seed=SEED)


def kernel_calls(a):
    """{implementation: (what it runs, whether it moves mask bits, no-argument callable)}."""
    x, y, mask, n, s = a.x, a.y, a.mask, a.size, SEED
    return {
        "np.multiply": ("np.multiply(x, 2.0, out=y)", False,
                        lambda: np.multiply(x, 2.0, out=y)),
        "np.copyto": ("np.copyto(y, x)", False, lambda: np.copyto(y, x)),
        FLOOR: ("y = 2x in C on fastdrop's thread pool", False,
                lambda: _kernels.times_two(x, y, config.get_num_threads())),
        "dropout": ("dropout(x, 0.5, seed=s, out=y)", False,
                    lambda: fastdrop.dropout(x, RATE, seed=s, out=y)),
        "dropout+bits": ("dropout(x, 0.5, seed=s, out=y, return_mask=True)", True,
                         lambda: fastdrop.dropout(x, RATE, seed=s, out=y, return_mask=True)),
        "sample_mask": ("sample_mask(n, 0.5, seed=s)", True,
                        lambda: fastdrop.sample_mask(n, RATE, seed=s)),
        "apply_mask": ("apply_mask(x, mask, out=y)", True,
                       lambda: fastdrop.apply_mask(x, mask, out=y)),
        "backward_mask": ("dropout_backward(g, mask, out=y)", True,
                          lambda: fastdrop.dropout_backward(x, mask, out=y)),
        "backward_regen": ("dropout_backward(g, rate=0.5, seed=s, out=y)", False,
                           lambda: fastdrop.dropout_backward(x, rate=RATE, seed=s, out=y)),
        "alpha_dropout": ("alpha_dropout(x, 0.5, seed=s, out=y)", False,
                          lambda: fastdrop.alpha_dropout(x, RATE, seed=s, out=y)),
        "alpha_backward": ("alpha_dropout_backward(g, rate=0.5, seed=s, out=y)", False,
                           lambda: fastdrop.alpha_dropout_backward(x, rate=RATE, seed=s, out=y)),
        "gaussian_dropout": ("gaussian_dropout(x, 0.5, seed=s, out=y)", False,
                             lambda: fastdrop.gaussian_dropout(x, RATE, seed=s, out=y)),
        "gaussian_backward": ("gaussian_dropout_backward(g, rate=0.5, seed=s, out=y)", False,
                              lambda: fastdrop.gaussian_dropout_backward(x, rate=RATE, seed=s,
                                                                         out=y)),
        "reference": ("fastdrop.reference.dropout(x, 0.5, seed=s, out=y)", False,
                      lambda: fastdrop.reference.dropout(x, RATE, seed=s, out=y)),
    }


def load_peers(wanted):
    """{name: (version, factory(arrays) -> (what it runs, callable))} of the installed peers."""
    peers = {}
    if not wanted:
        return peers
    if importlib.util.find_spec("torch") is not None:
        import torch

        def torch_call(a):
            tensor = torch.from_numpy(a.x)
            return ("torch.nn.functional.dropout(x, 0.5) (allocates y)",
                    lambda: torch.nn.functional.dropout(tensor, RATE, True))
        peers["torch"] = (torch.__version__, torch_call)
    if importlib.util.find_spec("jax") is not None:
        import jax

        keep = 1.0 - RATE
        jitted = jax.jit(lambda key, x: jax.numpy.where(
            jax.random.bernoulli(key, keep, x.shape), x / keep, jax.numpy.zeros((), x.dtype)))
        key = jax.random.PRNGKey(SEED)

        def jax_call(a):
            array = jax.numpy.asarray(a.x)
            return ("jit(where(bernoulli(key, 0.5), x / 0.5, 0)) (allocates y)",
                    lambda: jitted(key, array).block_until_ready())
        peers["jax"] = (jax.__version__, jax_call)
    return peers


class Group:
    """The cases timed together on one set of arrays: (implementation, threads, SIMD level)
    with threads and level None for NumPy, the reference and the peers."""

    def __init__(self, kind, dtype, size):
        self.kind, self.dtype, self.size = kind, dtype, size
        self.cases = [("np.multiply", None, None)]

    def add(self, impl, threads=None, simd=None):
        if (impl, threads, simd) not in self.cases:
            self.cases.append((impl, threads, simd))

    @property
    def name(self):
        if self.kind == "small_calls":
            return f"small calls, {self.dtype}, n = {format_size(self.size)}"
        return f"{self.dtype}, n = {format_size(self.size)}"


def plan(options, level, levels, peers):
    """The groups of one run, in the order they run."""
    groups = {}

    def group(kind, dtype, size):
        return groups.setdefault((kind, dtype, size), Group(kind, dtype, size))

    top = max(options.threads)
    for dtype in options.dtypes:
        for size in options.sizes:
            g = group("throughput", dtype, size)
            g.add("np.copyto")
            for threads in options.threads:
                g.add(FLOOR, threads, level)
                for impl in ("dropout", "dropout+bits", "apply_mask", "backward_regen"):
                    g.add(impl, threads, level)
                if dtype == options.dtypes[0]:  # the mask does not depend on the dtype
                    g.add("sample_mask", threads, level)
            if size <= REFERENCE_MAX_SIZE:
                g.add("reference")
            if dtype == "float32":  # their ratios are float32; float64 doubles their cost
                for peer in peers:
                    g.add(peer)
    for size in options.level_sizes:
        g = group("throughput", "float32", size)
        g.add(FLOOR, top, level)
        for simd in levels:
            g.add("dropout+bits", top, simd)
    small = group("small_calls", "float32", SMALL_CALL_SIZE)
    for impl in SMALL_CALLS:
        small.add(impl, top, level)
    return sorted(groups.values(), key=lambda g: (g.kind != "throughput", g.dtype, g.size))


def time_group(group, rounds, peers, default):
    """Time the group's cases on one set of arrays; `default` is the (threads, SIMD level)
    the baselines and peers run next to."""
    a = Arrays(group.dtype, group.size)
    calls, results = {}, []
    kernels = kernel_calls(a)
    for impl, threads, simd in group.cases:
        if impl in peers:
            text, call = peers[impl][1](a)
            moves_mask = False
        else:
            text, moves_mask, call = kernels[impl]
        label = impl if threads is None else (
            f"{impl} [{threads}t]" if impl == FLOOR else f"{impl} [{simd}, {threads}t]")
        calls[label] = call
        mask_bytes = (a.size + 7) // 8
        moved = mask_bytes if impl == "sample_mask" else (
            2 * a.x.nbytes + (mask_bytes if moves_mask else 0))
        results.append({"impl": impl, "label": label, "call": text, "threads": threads,
                        "simd": simd, "bytes_per_call": moved})
    settings = {r["label"]: (r["threads"], r["simd"]) if r["threads"] else default
                for r in results}

    def before(label):
        threads, simd = settings[label]
        config.set_num_threads(threads)
        config.set_simd_level(simd)

    times = interleaved_times(calls, rounds, warmup=1, before=before)
    base = statistics.median(times["np.multiply"])
    floors = {r["threads"]: statistics.median(times[r["label"]])
              for r in results if r["impl"] == FLOOR}
    for r in results:
        seconds = statistics.median(times[r["label"]])
        floor = floors.get(r["threads"] or default[0])
        r.update(seconds=seconds, seconds_rounds=times[r["label"]],
                 gelem_per_s=a.size / seconds / 1e9, gb_per_s=r["bytes_per_call"] / seconds / 1e9,
                 x_multiply=seconds / base, x_floor=None if floor is None else seconds / floor)
    return {"name": group.name, "kind": group.kind, "dtype": group.dtype, "size": group.size,
            "results": results}


def stream_cases(size, threads, levels, rounds):
    """The mask-stream cells at one size and thread count, timed together with the floor."""
    x = np.random.default_rng(SEED).standard_normal(size, dtype=np.float32)
    y = np.zeros_like(x)
    calls, settings, cells = {FLOOR: lambda: _kernels.times_two(x, y, threads)}, {}, []
    settings[FLOOR] = levels[-1]
    for level in levels:
        for rate in STREAM_RATES:
            ops = {"forward": lambda r=rate: fastdrop.dropout(x, r, seed=SEED, out=y,
                                                              return_mask=True),
                   "backward_regen": lambda r=rate: fastdrop.dropout_backward(
                       x, rate=r, seed=SEED, out=y)}
            if rate == 0.5:
                ops["sample_mask"] = lambda r=rate: fastdrop.sample_mask(size, r, seed=SEED)
            for op, call in ops.items():
                label = f"{op} {rate} [{level}]"
                calls[label], settings[label] = call, level
                cells.append({"size": size, "threads": threads, "level": level, "rate": rate,
                              "op": op, "label": label})

    def before(label):
        config.set_num_threads(threads)
        config.set_simd_level(settings[label])

    times = interleaved_times(calls, rounds, warmup=1, before=before)
    floor = statistics.median(times[FLOOR])
    for cell in cells:
        cell["seconds"] = statistics.median(times.pop(cell["label"]))
        cell["x_floor"] = cell["seconds"] / floor
        cell["floor_seconds"] = floor
    return cells


def mask_stream(options, levels, progress=None):
    """Every mask-stream cell: each (size, thread count) timed as one interleaved group."""
    cells = []
    for size in options.stream_sizes:
        for threads in sorted({1, max(options.threads)}):
            if progress is not None:
                print(f"fastdrop bench: mask stream, n = {format_size(size)}, {threads} "
                      f"thread(s) ...", file=progress, flush=True)
            cells += stream_cases(size, threads, levels, options.rounds)
    return cells


# -- the report -------------------------------------------------------------------------------

def _index(groups):
    """{(dtype, size, implementation, threads, SIMD level): result} of the throughput groups."""
    return {(g["dtype"], g["size"], r["impl"], r["threads"], r["simd"]): r
            for g in groups if g["kind"] == "throughput" for r in g["results"]}


def headline_ratios(groups, meta):
    """Each of RATIOS per thread count, at the largest size where both sides were measured."""
    index = _index(groups)
    ratios = []
    for key, what, dtype, num, den in RATIOS:
        for threads in meta["threads"]:
            def result(impl, size):
                ours = impl not in NOT_FASTDROP
                return index.get((dtype, size, impl, threads if ours else None,
                                  meta["simd_level"] if ours else None))
            sizes = [n for n in reversed(meta["sizes"]) if result(num, n) and result(den, n)]
            if sizes:
                value = result(num, sizes[0])["seconds"] / result(den, sizes[0])["seconds"]
                x_floor = result(num, sizes[0])["x_floor"] if den == "np.multiply" else None
                ratios.append({"key": key, "what": what, "dtype": dtype, "size": sizes[0],
                               "threads": threads, "value": value, "x_floor": x_floor})
    return ratios


def simd_levels(groups, meta):
    """Forward float32 with bits at each level and level size, as time, x np.multiply and
    x the floor."""
    index = _index(groups)
    threads = meta["level_threads"]
    return [{"size": size, "level": level, "threads": threads,
             "seconds": r["seconds"], "x_multiply": r["x_multiply"], "x_floor": r["x_floor"]}
            for size in meta["level_sizes"] for level in meta["cpu_simd_levels"]
            for r in [index["float32", size, "dropout+bits", threads, level]]]


def benchmark(options, progress=None):
    """Run the benchmark described by `options`; returns the report (JSON-ready)."""
    level = config.simd_level()
    levels = list(config.available_simd_levels())
    peers = load_peers(options.peers)
    groups = plan(options, level, levels, peers)
    started = time.time()
    timed = []
    default = (config.get_num_threads(), level)
    with config.threads(default[0]), config.simd(level):
        for g in groups:
            if progress is not None:
                print(f"fastdrop bench: {g.name}, {len(g.cases)} implementations ...",
                      file=progress, flush=True)
            timed.append(time_group(g, options.rounds, peers, default))
        stream = mask_stream(options, levels, progress)
    meta = {"fastdrop": fastdrop.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "simd_level": level, "cpu_simd_levels": levels,
            "threads": options.threads, "default_threads": config.get_num_threads(),
            "level_threads": max(options.threads), "rounds": options.rounds,
            "sizes": options.sizes, "level_sizes": options.level_sizes,
            "stream_sizes": options.stream_sizes,
            "dtypes": list(options.dtypes), "seed": SEED, "rate": RATE,
            "peers": {name: version for name, (version, _) in peers.items()},
            "command": command(options),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "wall_seconds": round(time.time() - started, 3)}
    return {"meta": meta, "groups": timed, "ratios": headline_ratios(timed, meta),
            "simd_levels": simd_levels(timed, meta), "mask_stream": stream}


def format_size(n):
    exponent = n.bit_length() - 1
    return f"2^{exponent}" if n == 1 << exponent and n >= 8 else f"{n:,}"


def format_seconds(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _size_token(n):
    exponent = n.bit_length() - 1
    return str(exponent) if n == 1 << exponent else str(n)


def command(options):
    """The `fastdrop bench` command line that repeats this run."""
    parts = ["fastdrop bench", "--sizes", ",".join(map(_size_token, options.sizes)),
             "--dtype", "both" if len(options.dtypes) == 2 else options.dtypes[0],
             "--threads", ",".join(map(str, options.threads)),
             "--level-sizes", ",".join(map(_size_token, options.level_sizes)),
             "--stream-sizes", ",".join(map(_size_token, options.stream_sizes)),
             "--rounds", str(options.rounds)]
    return " ".join(parts + ([] if options.peers else ["--no-peers"]))


def tables(report):
    """The report as [(title, header, rows)], rendered as text or as Markdown."""
    meta = report["meta"]
    threads = meta["threads"]
    out = []
    for g in report["groups"]:
        if g["kind"] == "throughput":
            out.append((g["name"], ["implementation", "time/call", "Gelem/s", "GB/s", "x mul",
                                    "x floor"],
                        [[r["label"], format_seconds(r["seconds"]), f"{r['gelem_per_s']:.3f}",
                          f"{r['gb_per_s']:.2f}", f"{r['x_multiply']:.2f}",
                          _format_ratio(r["x_floor"])] for r in g["results"]]))
    by_key = {}
    for entry in report["ratios"]:
        by_key.setdefault(entry["key"], {})[entry["threads"]] = entry
    rows = []
    for per_thread in by_key.values():
        first = next(iter(per_thread.values()))
        entries = [per_thread.get(t) for t in threads]
        rows.append([first["what"], format_size(first["size"])] + [
            (f"{e['value']:.1f}x" if e["key"].startswith("vs_") else f"{e['value']:.2f}")
            if e else "" for e in entries] + [
            _format_ratio(e["x_floor"]) if e else "" for e in entries])
    out.append(("Ratios of medians (time over np.multiply's, or the peer's time over "
                "fastdrop.dropout's; then time over the floor's at the same thread count)",
                ["what", "n", *(f"{t} thread(s)" for t in threads),
                 *(f"floor {t}t" for t in threads)], rows))
    small = next(g for g in report["groups"] if g["kind"] == "small_calls")
    out.append((f"Small calls: {SMALL_CALL_SIZE} float32 elements, fastdrop at "
                f"{meta['level_threads']} thread(s), over np.multiply(x, 2.0, out=y)",
                ["call", "time/call", "x mul"],
                [[r["call"], format_seconds(r["seconds"]), f"{r['x_multiply']:.2f}"]
                 for r in small["results"]]))
    cells = {(row["size"], row["level"]): row for row in report["simd_levels"]}
    out.append((f"SIMD levels: forward float32 with mask bits, {meta['level_threads']} "
                f"thread(s): time (x np.multiply, x floor)", ["n", *meta["cpu_simd_levels"]],
                [[format_size(size)] + [
                    f"{format_seconds(cells[size, level]['seconds'])} "
                    f"({cells[size, level]['x_multiply']:.2f}, "
                    f"{_format_ratio(cells[size, level]['x_floor'])})"
                    for level in meta["cpu_simd_levels"]] for size in meta["level_sizes"]]))
    stream = {(c["size"], c["threads"], c["level"], c["op"], c["rate"]): c
              for c in report["mask_stream"]}
    columns = [(op, rate) for op, _ in STREAM_OPS for rate in STREAM_RATES
               if any(key[3:] == (op, rate) for key in stream)]
    rows = sorted({key[:3] for key in stream},
                  key=lambda k: (k[0], k[1], meta["cpu_simd_levels"].index(k[2])))
    out.append(("Mask stream: time over the floor at the same thread count (forward f32 "
                "with bits, backward regenerating the mask, sample_mask)",
                ["n", "threads", "level", *(f"{op} {rate}" for op, rate in columns)],
                [[format_size(size), str(threads), level] + [
                    _format_ratio(stream[size, threads, level, op, rate]["x_floor"])
                    for op, rate in columns] for size, threads, level in rows]))
    return out


def _format_ratio(value):
    return "" if value is None else f"{value:.2f}"


def _header_lines(meta):
    peers = ", ".join(f"{name} {version}" for name, version in meta["peers"].items())
    return [f"fastdrop {meta['fastdrop']}, numpy {meta['numpy']}, python {meta['python']}, "
            f"{meta['cpu_count']} CPUs; SIMD {meta['simd_level']} (this machine runs "
            f"{', '.join(meta['cpu_simd_levels'])}); threads {', '.join(map(str, meta['threads']))}"
            f"; peers: {peers or 'none'}",
            f"median of {meta['rounds']} interleaved rounds after warm-up, "
            f"{meta['wall_seconds']:.0f} s; GB/s counts bytes read + written"]


def render_text(report):
    first, *rest = _header_lines(report["meta"])
    lines = ["fastdrop bench: " + first, *rest]
    for title, header, rows in tables(report):
        widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
        lines += ["", title]
        for row in [header, *rows]:
            cells = [f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}"
                     for i, (cell, w) in enumerate(zip(row, widths))]
            lines.append("  " + "  ".join(cells).rstrip())
    lines += ["", f"command: {report['meta']['command']}"]
    return "\n".join(lines)


def render_markdown(report):
    lines = [f"Command: `{report['meta']['command']}`", "", *_header_lines(report["meta"])]
    for title, header, rows in tables(report):
        lines += ["", f"### {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_plot(report, path, figure_class):
    """Gelem/s against size, log-log, one panel per dtype: fastdrop at the largest thread
    count and the default level (solid), NumPy, the reference and the peers (dashed)."""
    meta = report["meta"]
    shown = {}
    for g in report["groups"]:
        for r in g["results"]:
            if g["kind"] == "throughput" and r["threads"] in (None, meta["level_threads"]) \
                    and r["simd"] in (None, meta["simd_level"]):
                shown.setdefault(g["dtype"], {}).setdefault(r["label"], []).append(
                    (g["size"], r["gelem_per_s"], r["threads"] is not None))
    figure = figure_class(figsize=(7 * len(shown) + 3, 5.5), layout="constrained")
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    for axis, (dtype, lines) in zip(axes, sorted(shown.items())):
        for label, points in lines.items():
            points.sort()
            axis.plot([p[0] for p in points], [p[1] for p in points],
                      "-" if points[0][2] else "--", marker="o", markersize=3, label=label)
        axis.set(xscale="log", yscale="log", xlabel="elements", ylabel="Gelem/s",
                 title=f"{dtype}: fastdrop at {meta['level_threads']} thread(s)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.savefig(path, dpi=120)


# -- entry point -------------------------------------------------------------------------------

class Options:
    """The settings of one run, with the defaults filled in."""

    def __init__(self, args):
        quick = getattr(args, "quick", False)
        self.sizes = args.sizes or parse_sizes(QUICK_SIZES if quick else DEFAULT_SIZES)
        self.level_sizes = args.level_sizes or parse_sizes(
            QUICK_LEVEL_SIZES if quick else DEFAULT_LEVEL_SIZES)
        self.stream_sizes = args.stream_sizes or parse_sizes(
            QUICK_STREAM_SIZES if quick else DEFAULT_STREAM_SIZES)
        self.dtypes = DTYPES if args.dtype == "both" else (args.dtype,)
        self.threads = args.threads or sorted({1, config.get_num_threads()})
        self.rounds = args.rounds
        self.peers = not args.no_peers


def _figure_class():
    try:
        from matplotlib.figure import Figure  # no pyplot: no backend is switched
    except ImportError:
        return None
    return Figure


def _error(message):
    print(f"fastdrop bench: error: {message}", file=sys.stderr)
    return 2


def run(args):
    for option in ("json", "markdown", "plot"):
        path = getattr(args, option)
        if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            return _error(f"--{option}: folder {os.path.dirname(os.path.abspath(path))!r} "
                          f"does not exist")
    figure_class = None
    if args.plot is not None:
        figure_class = _figure_class()
        if figure_class is None:
            return _error("--plot needs matplotlib, which is not installed "
                          "(pip install matplotlib)")
    report = benchmark(Options(args), progress=None if args.no_progress else sys.stderr)
    print(render_text(report))
    if args.json is not None:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
        print(f"wrote {args.json}")
    if args.markdown is not None:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(render_markdown(report))
        print(f"wrote {args.markdown}")
    if args.plot is not None:
        write_plot(report, args.plot, figure_class)
        print(f"wrote {args.plot}")
    return 0
