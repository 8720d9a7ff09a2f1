"""`fastdrop bench`: throughput of the kernels next to NumPy and peers, and the ratio targets.

This is a self-contained timing loop (``time.perf_counter``), not pytest-benchmark (that
suite lives in ``bench/``).  For every dtype and size it builds one set of arrays and times
every implementation on those same arrays.  Rounds are interleaved (round r times each
implementation once before round r + 1 starts), so a burst of noise from another process
hits all of them alike and the ratios of medians stay meaningful on a shared machine.
Each implementation gets two untimed warm-up calls, then ``rounds`` timed rounds; a round
repeats a small array's call a fixed number of times (about 2^20 elements per round, fewer
if a call is slow) and records the time per call.  The median over rounds is reported.

Throughput counts elements per second and bytes read + written per second: x and y for the
elementwise passes, plus the 1-bit-per-element mask where one is written or read.

torch and jax are optional peers: found with importlib, imported only when present, and
never required.  matplotlib (``--plot``) and tqdm (the progress bar) are optional too.
"""
import argparse
import importlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastdrop
from fastdrop import config as fd_config

MAX_EXPONENT = 28
EXPONENT_LIMIT = 40           # a bare integer up to this is an exponent, above it a size
DEFAULT_SIZES = "10,16,20,24"
QUICK_SIZES = "10,16,20"
DEFAULT_ROUNDS = 7
MIN_VALID_ROUNDS = 7          # the targets are medians of at least 7 rounds
TARGET_SIZE = 1 << 24
REFERENCE_MAX_SIZE = 1 << 24  # fastdrop.reference takes over a second at 2^24
SMALL_CALL_SIZE = 1024
GROWTH_START_SIZE = 1000
GROWTH_FROM_SIZE = 1 << 16    # below this the fixed cost of a call dominates the curve
ELEMENTS_PER_ROUND = 1 << 20
ROUND_BUDGET_SECONDS = 0.02   # cap on one round of one implementation at small sizes
SEED = 20240601
RATE = 0.5
DTYPES = ("float32", "float64")

#: What each implementation runs; x and y are preallocated, s is a fixed seed.
IMPLEMENTATIONS = {
    "np.multiply": "np.multiply(x, 2.0, out=y)",
    "np.copyto": "np.copyto(y, x)",
    "dropout": "fastdrop.dropout(x, 0.5, seed=s, out=y)",
    "dropout+bits": "fastdrop.dropout(x, 0.5, seed=s, out=y, return_mask=True)",
    "apply_mask": "fastdrop.apply_mask(x, mask, out=y)",
    "backward_regen": "fastdrop.dropout_backward(x, rate=0.5, seed=s, out=y)",
    "sample_mask": "fastdrop.sample_mask(n, 0.5, seed=s)",
    "reference": "fastdrop.reference.dropout(x, 0.5, seed=s, out=y)  [n <= 2^24]",
    "torch": "torch.nn.functional.dropout(torch.from_numpy(x), 0.5)  [allocates y]",
    "jax": "jit(jnp.where(jax.random.bernoulli(key, 0.5, x.shape), x / 0.5, 0))  [allocates y]",
}
FASTDROP_IMPLEMENTATIONS = ("dropout", "dropout+bits", "apply_mask", "backward_regen",
                            "sample_mask")
PEERS = ("torch", "jax")


# -- option parsing ------------------------------------------------------------------------

def _parse_one_size(token):
    text = token.strip().lower().replace("**", "^")
    if not text:
        raise ValueError("empty entry")
    try:
        if "^" in text:
            base, exponent = text.split("^", 1)
            base, exponent = int(base), int(exponent)
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
    """Element counts from "10,16,20" (a number up to EXPONENT_LIMIT is an exponent of 2),
    "2^20", "1e3" or "65536" (a larger number is a count); sorted, without duplicates."""
    if isinstance(text, str):
        tokens = text.split(",")
    else:
        tokens = [str(t) for t in text]
    try:
        sizes = sorted({_parse_one_size(t) for t in tokens})
    except ValueError as exc:
        raise ValueError(f"--sizes: {exc}") from None
    if not sizes:
        raise ValueError("--sizes: no sizes given")
    return sizes


def parse_threads(text):
    """Thread counts from "1,2" (each at least 1); sorted, without duplicates."""
    tokens = text.split(",") if isinstance(text, str) else [str(t) for t in text]
    counts = set()
    for token in tokens:
        try:
            count = int(token.strip())
        except ValueError:
            raise ValueError(f"--threads: {token.strip()!r} is not an integer") from None
        if count < 1:
            raise ValueError(f"--threads: thread counts must be at least 1, got {count}")
        counts.add(count)
    if not counts:
        raise ValueError("--threads: no thread counts given")
    return sorted(counts)


def parse_rounds(text):
    try:
        rounds = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"--rounds: {text!r} is not an integer") from None
    if rounds < 1:
        raise ValueError(f"--rounds: must be at least 1, got {rounds}")
    return rounds


def _argparse_type(parse):
    def convert(text):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
    convert.__name__ = parse.__name__.replace("parse_", "")
    return convert


def add_arguments(parser):
    parser.add_argument(
        "--sizes", type=_argparse_type(parse_sizes), default=None,
        help=f"comma-separated sizes: a number up to {EXPONENT_LIMIT} is an exponent of 2 "
             f"(20 = 2^20 elements), a larger one an element count (1000); 2^k and 1e3 work "
             f"too; at most 2^{MAX_EXPONENT} (default {DEFAULT_SIZES}; 1000 and 1024 "
             f"elements are always added in float32 for the growth curve and the small-call "
             f"target)")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both",
                        help="element type (default both)")
    parser.add_argument(
        "--threads", type=_argparse_type(parse_threads), default=None,
        help="comma-separated thread counts for the fastdrop kernels (default 1 and "
             "fastdrop's default); ratios are given for each, marked at the largest")
    parser.add_argument("--rounds", type=_argparse_type(parse_rounds), default=DEFAULT_ROUNDS,
                        help=f"timed rounds per implementation; the median is reported "
                             f"(default {DEFAULT_ROUNDS}; the targets need at least "
                             f"{MIN_VALID_ROUNDS})")
    parser.add_argument("--json", metavar="OUT.json", default=None,
                        help="also write every timing and ratio to this JSON file")
    parser.add_argument("--plot", metavar="OUT.png", default=None,
                        help="also plot throughput vs size per implementation (log-log; "
                             "needs matplotlib)")
    parser.add_argument("--markdown", metavar="OUT.md", default=None,
                        help="also write the targets, growth and throughput as Markdown "
                             "tables")
    parser.add_argument("--quick", action="store_true",
                        help=f"a short run: sizes {QUICK_SIZES} unless --sizes is given")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip torch and jax even if they are installed")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar on stderr")


class Config:
    """The validated settings of one run."""

    def __init__(self, sizes, dtypes, threads, rounds, peers=True, progress=True,
                 json_path=None, plot_path=None, quick=False, markdown_path=None):
        self.sizes = sizes
        self.dtypes = dtypes
        self.threads = threads
        self.rounds = rounds
        self.peers = peers
        self.progress = progress
        self.json_path = json_path
        self.plot_path = plot_path
        self.quick = quick
        self.markdown_path = markdown_path

    @property
    def headline_threads(self):
        return max(self.threads)

    def command(self):
        """The `fastdrop bench` command line that repeats this run."""
        parts = ["fastdrop", "bench", "--sizes", ",".join(_size_token(n) for n in self.sizes),
                 "--dtype", "both" if len(self.dtypes) == 2 else self.dtypes[0],
                 "--threads", ",".join(str(t) for t in self.threads),
                 "--rounds", str(self.rounds)]
        if not self.peers:
            parts.append("--no-peers")
        return " ".join(parts)


def _size_token(n):
    exponent = n.bit_length() - 1
    if n == 1 << exponent and exponent <= EXPONENT_LIMIT:
        return str(exponent)
    return str(n) if n > EXPONENT_LIMIT else f"{n}e0"


def config_from_args(args):
    """Validate the parsed options (also when `args` was built by hand) into a Config."""
    sizes = getattr(args, "sizes", None)
    quick = bool(getattr(args, "quick", False))
    if sizes is None:
        sizes = QUICK_SIZES if quick else DEFAULT_SIZES
    sizes = parse_sizes(sizes) if isinstance(sizes, str) else parse_sizes(list(sizes))
    dtype = getattr(args, "dtype", "both") or "both"
    if dtype not in ("float32", "float64", "both"):
        raise ValueError(f"--dtype must be float32, float64 or both, got {dtype!r}")
    dtypes = DTYPES if dtype == "both" else (dtype,)
    threads = getattr(args, "threads", None)
    if threads is None:
        threads = sorted({1, fastdrop.get_num_threads()})
    threads = parse_threads(threads if isinstance(threads, str) else list(threads))
    rounds = parse_rounds(getattr(args, "rounds", DEFAULT_ROUNDS))
    json_path = getattr(args, "json", None)
    plot_path = getattr(args, "plot", None)
    markdown_path = getattr(args, "markdown", None)
    for option, path in (("--json", json_path), ("--plot", plot_path),
                         ("--markdown", markdown_path)):
        if path is not None:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise ValueError(f"{option}: folder {folder!r} does not exist")
    return Config(sizes, dtypes, threads, rounds,
                  peers=not getattr(args, "no_peers", False),
                  progress=not getattr(args, "no_progress", False),
                  json_path=json_path, plot_path=plot_path, quick=quick,
                  markdown_path=markdown_path)


# -- the cases to time ------------------------------------------------------------------

class Case:
    """One implementation at one (dtype, size), and for fastdrop one (threads, SIMD level)."""

    def __init__(self, impl, dtype, size, threads=None, simd=None):
        self.impl = impl
        self.dtype = dtype
        self.size = size
        self.threads = threads
        self.simd = simd
        self.inner = 1
        self.seconds = []  # per-call time of each round

    @property
    def id(self):
        base = f"{self.dtype}/{self.size}/{self.impl}"
        return base if self.threads is None else f"{base}/{self.simd}/t{self.threads}"

    @property
    def label(self):
        if self.threads is None:
            return self.impl
        return f"{self.impl} [{self.simd}, {self.threads}t]"

    def bytes_per_call(self):
        mask_bytes = (self.size + 7) // 8
        if self.impl == "sample_mask":
            return mask_bytes
        moved = 2 * self.size * np.dtype(self.dtype).itemsize
        return moved + mask_bytes if self.impl in ("dropout+bits", "apply_mask") else moved


def plan_groups(config, default_level, levels, peers):
    """[(dtype, size, [Case, ...]), ...] in the order they run."""
    groups = []
    for dtype in config.dtypes:
        sizes = set(config.sizes)
        extra = set()
        if dtype == "float32":
            extra = {GROWTH_START_SIZE, SMALL_CALL_SIZE} - sizes
        for size in sorted(sizes | extra):
            cases = [Case("np.multiply", dtype, size)]
            if size in extra:  # only what the growth curve and the small-call target need
                for t in config.threads:
                    cases += [Case("dropout", dtype, size, t, default_level),
                              Case("dropout+bits", dtype, size, t, default_level)]
                groups.append((dtype, size, cases))
                continue
            cases.append(Case("np.copyto", dtype, size))
            for t in config.threads:
                impls = ["dropout", "dropout+bits", "apply_mask", "backward_regen"]
                if dtype == config.dtypes[0]:
                    impls.append("sample_mask")  # the mask does not depend on the dtype
                cases += [Case(impl, dtype, size, t, default_level) for impl in impls]
                cases += [Case("dropout+bits", dtype, size, t, level)
                          for level in reversed(levels) if level != default_level]
            if size <= REFERENCE_MAX_SIZE:
                cases.append(Case("reference", dtype, size))
            cases += [Case(peer, dtype, size) for peer in PEERS if peer in peers]
            groups.append((dtype, size, cases))
    return groups


# -- optional peers -------------------------------------------------------------------------

def load_peers(config):
    """{name: module-ish info} for the peers that are installed (and wanted)."""
    peers = {}
    if not config.peers:
        return peers
    if importlib.util.find_spec("torch") is not None:
        try:
            torch = importlib.import_module("torch")
            peers["torch"] = {"module": torch, "version": torch.__version__,
                              "threads": torch.get_num_threads()}
        except Exception as exc:  # a broken install is reported, not fatal
            print(f"fastdrop bench: torch is installed but failed to import ({exc}); "
                  f"skipping it", file=sys.stderr)
    if importlib.util.find_spec("jax") is not None:
        try:
            jax = importlib.import_module("jax")
            if "float64" in config.dtypes:
                # without x64, jnp.asarray would silently turn float64 into float32
                jax.config.update("jax_enable_x64", True)
            jnp = importlib.import_module("jax.numpy")
            keep = 1.0 - RATE

            def jax_dropout(key, x):
                kept = jax.random.bernoulli(key, keep, x.shape)
                return jnp.where(kept, x / keep, jnp.zeros((), x.dtype))

            peers["jax"] = {"module": jax, "jnp": jnp, "version": jax.__version__,
                            "dropout": jax.jit(jax_dropout), "key": jax.random.PRNGKey(SEED)}
        except Exception as exc:
            print(f"fastdrop bench: jax is installed but failed to import ({exc}); "
                  f"skipping it", file=sys.stderr)
    return peers


# -- timing -----------------------------------------------------------------------------------

class GroupData:
    """The arrays every implementation of one (dtype, size) group works on."""

    def __init__(self, dtype, size, peers):
        self.size = size
        self.x = np.random.default_rng(SEED).standard_normal(size, dtype=np.dtype(dtype))
        self.y = np.zeros_like(self.x)  # zeros, not empty: its pages are touched now
        self.mask = fastdrop.sample_mask(size, RATE, seed=SEED)
        self.peer_inputs = {}
        if "torch" in peers:
            self.peer_inputs["torch"] = peers["torch"]["module"].from_numpy(self.x)
        if "jax" in peers:
            self.peer_inputs["jax"] = peers["jax"]["jnp"].asarray(self.x)


def make_call(case, data, peers):
    """A no-argument callable that runs `case` once."""
    x, y, mask, n = data.x, data.y, data.mask, data.size
    impl = case.impl
    if impl == "np.multiply":
        return lambda: np.multiply(x, 2.0, out=y)
    if impl == "np.copyto":
        return lambda: np.copyto(y, x)
    if impl == "dropout":
        return lambda: fastdrop.dropout(x, RATE, seed=SEED, out=y)
    if impl == "dropout+bits":
        return lambda: fastdrop.dropout(x, RATE, seed=SEED, out=y, return_mask=True)
    if impl == "apply_mask":
        return lambda: fastdrop.apply_mask(x, mask, out=y)
    if impl == "backward_regen":
        return lambda: fastdrop.dropout_backward(x, rate=RATE, seed=SEED, out=y)
    if impl == "sample_mask":
        return lambda: fastdrop.sample_mask(n, RATE, seed=SEED)
    if impl == "reference":
        return lambda: fastdrop.reference.dropout(x, RATE, seed=SEED, out=y)
    if impl == "torch":
        dropout = peers["torch"]["module"].nn.functional.dropout
        tensor = data.peer_inputs["torch"]
        return lambda: dropout(tensor, RATE, True)
    if impl == "jax":
        jax_dropout, key = peers["jax"]["dropout"], peers["jax"]["key"]
        array = data.peer_inputs["jax"]
        return lambda: jax_dropout(key, array).block_until_ready()
    raise ValueError(f"unknown implementation {impl!r}")


def _configure(case, default_threads, default_level):
    if case.threads is None:
        fastdrop.set_num_threads(default_threads)
        fd_config.set_simd_level(default_level)
    else:
        fastdrop.set_num_threads(case.threads)
        fd_config.set_simd_level(case.simd)


def _time_round(call, inner):
    start = time.perf_counter()
    for _ in range(inner):
        call()
    return (time.perf_counter() - start) / inner


def time_group(cases, data, peers, rounds, progress, default_threads, default_level):
    calls = []
    for case in cases:
        _configure(case, default_threads, default_level)
        call = make_call(case, data, peers)
        call()  # first call: page faults, JIT compilation, lazy set-up
        single = _time_round(call, 1)
        repeats = max(1, ELEMENTS_PER_ROUND // case.size)
        case.inner = max(1, min(repeats, int(ROUND_BUDGET_SECONDS / max(single, 1e-9))))
        calls.append(call)
        progress.advance(f"{case.dtype} {format_size(case.size)} warm-up")
    for round_index in range(rounds):
        for case, call in zip(cases, calls):
            _configure(case, default_threads, default_level)
            case.seconds.append(_time_round(call, case.inner))
            progress.advance(f"{case.dtype} {format_size(case.size)} "
                             f"round {round_index + 1}/{rounds}")


class Progress:
    """tqdm when installed, else one stderr line rewritten with \\r."""

    def __init__(self, total, enabled=True, stream=None):
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._bar = None
        self._last_draw = 0.0
        if enabled and importlib.util.find_spec("tqdm") is not None:
            tqdm = importlib.import_module("tqdm").tqdm
            self._bar = tqdm(total=total, file=self.stream, unit="step", leave=False,
                             desc="fastdrop bench")

    def advance(self, text):
        self.done += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.update(1)
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and self.done < self.total:
            return
        self._last_draw = now
        width = 30
        filled = width * self.done // max(self.total, 1)
        line = (f"\rfastdrop bench [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done}/{self.total} {text}")
        self.stream.write(line.ljust(100))
        self.stream.flush()

    def close(self):
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


# -- results and ratios ------------------------------------------------------------------

def case_result(case):
    median = statistics.median(case.seconds)
    moved = case.bytes_per_call()
    return {
        "id": case.id, "impl": case.impl, "label": case.label, "dtype": case.dtype,
        "size": case.size, "threads": case.threads, "simd": case.simd,
        "inner_repeats": case.inner, "rounds": len(case.seconds),
        "seconds": median, "seconds_min": min(case.seconds),
        "seconds_rounds": list(case.seconds), "bytes_per_call": moved,
        "gelem_per_s": case.size / median / 1e9, "gb_per_s": moved / median / 1e9,
    }


class ResultIndex:
    def __init__(self, results):
        self._by_id = {r["id"]: r for r in results}

    def get(self, dtype, size, impl, threads=None, simd=None):
        key = f"{dtype}/{size}/{impl}"
        if threads is not None:
            key += f"/{simd}/t{threads}"
        return self._by_id.get(key)


#: The issue's target table.  Every ratio's value is seconds(numerator_id) /
#: seconds(denominator_id), medians of the same run.  kind "time": the fastdrop call over the
#: baseline; "speedup": the peer over the fastdrop call (x faster); "throughput": AVX-512
#: time over the lower level's time, i.e. the lower level's throughput / AVX-512's.
TARGETS = (
    {"key": "forward_f32_bits", "what": "dropout forward f32, bits written / np.multiply",
     "kind": "time", "dtype": "float32", "num": "dropout+bits", "den": "np.multiply",
     "op": "<=", "target": 1.0},
    {"key": "forward_f64", "what": "dropout forward f64, bits written / np.multiply f64",
     "kind": "time", "dtype": "float64", "num": "dropout+bits", "den": "np.multiply",
     "op": "<=", "target": 1.0},
    {"key": "apply_mask", "what": "apply_mask (backward from bits) / np.multiply",
     "kind": "time", "dtype": "float32", "num": "apply_mask", "den": "np.multiply",
     "op": "<=", "target": 0.9},
    {"key": "backward_regen", "what": "dropout_backward regenerating / np.multiply",
     "kind": "time", "dtype": "float32", "num": "backward_regen", "den": "np.multiply",
     "op": "<=", "target": 1.0},
    {"key": "vs_reference", "what": "x faster than fastdrop.reference",
     "kind": "speedup", "dtype": "float32", "num": "dropout", "den": "reference",
     "op": ">=", "target": 10.0},
    {"key": "vs_torch", "what": "x faster than torch.nn.functional.dropout",
     "kind": "speedup", "dtype": "float32", "num": "dropout", "den": "torch",
     "op": ">=", "target": 40.0},
    {"key": "vs_jax", "what": "x faster than jitted jax bernoulli+where",
     "kind": "speedup", "dtype": "float32", "num": "dropout", "den": "jax",
     "op": ">=", "target": 30.0},
    {"key": "small_call", "what": "1024-element f32 dropout call / np.multiply",
     "kind": "time", "dtype": "float32", "num": "dropout", "den": "np.multiply",
     "op": "<=", "target": 2.0, "size": SMALL_CALL_SIZE},
    {"key": "avx2_vs_avx512", "what": "AVX2 / AVX-512 throughput (forward f32 + bits)",
     "kind": "throughput", "dtype": "float32", "num": "dropout+bits", "level": "avx2",
     "op": ">=", "target": 0.6},
    {"key": "scalar_vs_avx512", "what": "scalar / AVX-512 throughput (reported)",
     "kind": "throughput", "dtype": "float32", "num": "dropout+bits", "level": "scalar",
     "op": None, "target": None},
)


def target_size(config):
    """2^24 when measured, else the largest size measured (the ratios say which)."""
    return TARGET_SIZE if TARGET_SIZE in config.sizes else max(config.sizes)


def _status(value, op, target):
    if value is None:
        return "n/a"
    if op is None:
        return "info"
    ok = value <= target if op == "<=" else value >= target
    return "pass" if ok else "miss"


def compute_ratios(results, config, default_level):
    """Every target ratio, for every thread count, from the medians in `results`."""
    index = ResultIndex(results)
    ratios = []
    size_for_targets = target_size(config)
    for spec in TARGETS:
        size = spec.get("size", size_for_targets)
        for threads in config.threads:
            entry = {"key": spec["key"], "what": spec["what"], "kind": spec["kind"],
                     "dtype": spec["dtype"], "size": size, "threads": threads,
                     "op": spec["op"], "target": spec["target"], "value": None,
                     "numerator_id": None, "denominator_id": None, "note": None}
            if spec["kind"] == "throughput":
                fast = index.get(spec["dtype"], size, spec["num"], threads, "avx512")
                slow = index.get(spec["dtype"], size, spec["num"], threads, spec["level"])
                if fast is None or slow is None:
                    entry["note"] = "level not available on this CPU or size not measured"
                else:  # throughput ratio = inverse time ratio
                    entry.update(value=fast["seconds"] / slow["seconds"],
                                 numerator_id=fast["id"], denominator_id=slow["id"])
            else:
                ours = index.get(spec["dtype"], size, spec["num"], threads, default_level)
                other = index.get(spec["dtype"], size, spec["den"])
                if ours is None or other is None:
                    entry["note"] = _missing_note(spec, size, config)
                elif spec["kind"] == "time":
                    entry.update(value=ours["seconds"] / other["seconds"],
                                 numerator_id=ours["id"], denominator_id=other["id"])
                else:
                    entry.update(value=other["seconds"] / ours["seconds"],
                                 numerator_id=other["id"], denominator_id=ours["id"])
            entry["status"] = _status(entry["value"], entry["op"], entry["target"])
            ratios.append(entry)
    return ratios


def _missing_note(spec, size, config):
    if spec["dtype"] not in config.dtypes:
        return f"{spec['dtype']} not measured"
    if spec["den"] in PEERS:
        return f"{spec['den']} not installed" if config.peers else "peers skipped"
    if spec["den"] == "reference" and size > REFERENCE_MAX_SIZE:
        return "reference is only run up to 2^24"
    return "not measured"


GROWTH_WHAT = "growth: f32+bits vs np.multiply, largest / best"


def compute_growth(results, config, default_level):
    """Per thread count: ns/element of forward f32 + bits and of np.multiply at each size.

    growth = (time ratio to np.multiply at the largest size) / (smallest such ratio over
    sizes >= 2^16).  Memory-bound np.multiply is the linear yardstick; a kernel whose cost
    grows faster than linearly (page faults, TLB, a thread pool that degrades) shows up as
    a growth factor above 1, while the fixed cost of small calls does not count.
    """
    index = ResultIndex(results)
    dtype = "float32"
    sizes = sorted({r["size"] for r in results if r["dtype"] == dtype
                    and r["impl"] == "dropout+bits"})
    growth = []
    for threads in config.threads:
        curve = []
        for size in sizes:
            ours = index.get(dtype, size, "dropout+bits", threads, default_level)
            base = index.get(dtype, size, "np.multiply")
            if ours is None or base is None:
                continue
            curve.append({"size": size, "ns_per_element": ours["seconds"] / size * 1e9,
                          "multiply_ns_per_element": base["seconds"] / size * 1e9,
                          "ratio": ours["seconds"] / base["seconds"]})
        big = [point for point in curve if point["size"] >= GROWTH_FROM_SIZE]
        value = None
        if len(big) >= 2:
            value = big[-1]["ratio"] / min(point["ratio"] for point in big)
        growth.append({"key": "growth", "kind": "growth", "what": GROWTH_WHAT,
                       "threads": threads, "dtype": dtype, "curve": curve,
                       "value": value, "op": "<=", "target": 1.25,
                       "status": _status(value, "<=", 1.25)})
    return growth


# -- the report --------------------------------------------------------------------------------

def format_size(n):
    exponent = n.bit_length() - 1
    if n == 1 << exponent and n >= 8:
        return f"2^{exponent}"
    return f"{n:,}"


def format_seconds(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_ratio(entry):
    if entry["value"] is None:
        return "n/a"
    value = entry["value"]
    text = f"{value:.1f}x" if entry["kind"] == "speedup" else f"{value:.2f}"
    return text if entry["status"] == "info" else f"{text} {entry['status']}"


def format_target(entry):
    if entry["kind"] == "growth":
        return f"{entry['op']} {entry['target']:g}"
    if entry["op"] is None:
        return "(report)"
    suffix = "x" if entry["kind"] == "speedup" else ""
    return f"{entry['op']} {entry['target']:g}{suffix}"


def render_report(report):
    meta, results, ratios = report["meta"], report["results"], report["ratios"]
    lines = []
    peers = ", ".join(f"{name} {meta['peers'][name]}" for name in meta["peers"]) or "none"
    lines.append(f"fastdrop bench: fastdrop {meta['fastdrop']}, numpy {meta['numpy']}, "
                 f"python {meta['python']}, {meta['cpu_count']} CPUs")
    lines.append(f"SIMD {meta['simd_level']} (CPU has {', '.join(meta['cpu_simd_levels'])}); "
                 f"threads {', '.join(map(str, meta['threads']))}; peers: {peers}")
    lines.append(f"median of {meta['rounds']} interleaved rounds after warm-up; "
                 f"GB/s counts bytes read + written")
    if meta["rounds"] < MIN_VALID_ROUNDS:
        lines.append(f"NOTE: fewer than {MIN_VALID_ROUNDS} rounds; the targets need at least "
                     f"{MIN_VALID_ROUNDS}")
    header = f"  {'implementation':<34} {'time/call':>10} {'Gelem/s':>9} {'GB/s':>8} {'x mul':>7}"
    groups = {}
    for result in results:
        groups.setdefault((result["dtype"], result["size"]), []).append(result)
    for (dtype, size), group in groups.items():
        lines.append("")
        lines.append(f"{dtype}, n = {format_size(size)}")
        lines.append(header)
        base = next((r for r in group if r["impl"] == "np.multiply"), None)
        for result in group:
            relative = f"{result['seconds'] / base['seconds']:.2f}" if base else ""
            lines.append(f"  {result['label']:<34} {format_seconds(result['seconds']):>10} "
                         f"{result['gelem_per_s']:>9.3f} {result['gb_per_s']:>8.2f} "
                         f"{relative:>7}")
    lines.append("")
    threads = meta["threads"]
    lines.append(f"Targets (issue 3): ratios of medians within this run, at "
                 f"n = {format_size(meta['target_size'])} unless said; fastdrop at "
                 f"{meta['simd_level']}")
    columns = "".join(f" {f'{t} thread' + ('s' if t > 1 else ''):>16}" for t in threads)
    lines.append(f"  {'what':<52} {'n':>6} {'target':>9}{columns}")
    by_key = {}
    for entry in ratios + report["growth"]:
        by_key.setdefault(entry["key"], {})[entry["threads"]] = entry
    for key, per_thread in by_key.items():
        first = per_thread[threads[0]]
        size = format_size(first["size"]) if "size" in first else ""
        cells = "".join(f" {format_ratio(per_thread[t]):>16}" for t in threads)
        lines.append(f"  {first['what']:<52} {size:>6} {format_target(first):>9}{cells}")
    lines.append("")
    lines.append("Growth: ns per element of forward f32 + bits (np.multiply in brackets)")
    for entry in report["growth"]:
        points = ", ".join(f"{format_size(p['size'])}: {p['ns_per_element']:.3g} "
                           f"({p['multiply_ns_per_element']:.3g})" for p in entry["curve"])
        lines.append(f"  {entry['threads']}t: {points}")
    misses = sorted({e["key"] for e in ratios + report["growth"]
                     if e["status"] == "miss" and e["threads"] == meta["headline_threads"]})
    lines.append("")
    lines.append(f"At {meta['headline_threads']} thread(s): "
                 + (f"{len(misses)} target(s) missed: {', '.join(misses)}" if misses
                    else "every measured target passes"))
    lines.append(f"command: {meta['command']}")
    return "\n".join(lines)


def render_markdown(report):
    """The targets, the growth curve and throughput by size as Markdown tables."""
    meta = report["meta"]
    threads = meta["threads"]
    headline = meta["headline_threads"]
    peers = ", ".join(f"{name} {meta['peers'][name]}" for name in meta["peers"]) or "none"
    out = [f"Command: `{meta['command']}`", "",
           f"fastdrop {meta['fastdrop']}, numpy {meta['numpy']}, python {meta['python']}, "
           f"{meta['cpu_count']} CPUs, SIMD {meta['simd_level']} (CPU has "
           f"{', '.join(meta['cpu_simd_levels'])}), peers: {peers}; started "
           f"{meta['started']}, {meta['wall_seconds']:.0f} s; median of {meta['rounds']} "
           f"interleaved rounds.", "",
           f"### Targets (n = {format_size(meta['target_size'])} unless said)", "",
           "| what | n | target | " + " | ".join(f"{t} thread(s)" for t in threads) + " |",
           "|---|---|---|" + "---|" * len(threads)]
    by_key = {}
    for entry in report["ratios"] + report["growth"]:
        by_key.setdefault(entry["key"], {})[entry["threads"]] = entry
    for per_thread in by_key.values():
        first = per_thread[threads[0]]
        size = format_size(first["size"]) if "size" in first else "all"
        cells = " | ".join(_markdown_ratio(per_thread[t], t == headline) for t in threads)
        out.append(f"| {first['what']} | {size} | {format_target(first)} | {cells} |")
    out += ["", "### Growth: ns per element, forward f32 + bits", "",
            "| n | " + " | ".join(f"{t} thread(s)" for t in threads) + " | np.multiply |",
            "|---|" + "---|" * (len(threads) + 1)]
    curves = {g["threads"]: {p["size"]: p for p in g["curve"]} for g in report["growth"]}
    for size in sorted({size for curve in curves.values() for size in curve}):
        cells = [f"{curves[t][size]['ns_per_element']:.3g}" if size in curves[t] else ""
                 for t in threads]
        base = next(curves[t][size] for t in threads if size in curves[t])
        out.append(f"| {format_size(size)} | {' | '.join(cells)} | "
                   f"{base['multiply_ns_per_element']:.3g} |")
    for dtype in meta["dtypes"]:
        rows = [r for r in report["results"] if r["dtype"] == dtype
                and r["threads"] in (None, headline)]
        sizes = sorted({r["size"] for r in rows})
        out += ["", f"### Throughput, {dtype}: Gelem/s (GB/s), fastdrop at {headline} "
                    f"thread(s)", "",
                "| implementation | " + " | ".join(format_size(n) for n in sizes) + " |",
                "|---|" + "---|" * len(sizes)]
        cells = {}
        for r in rows:
            cells.setdefault(r["label"], {})[r["size"]] = (
                f"{r['gelem_per_s']:.3g} ({r['gb_per_s']:.3g})")
        for label, by_size in cells.items():
            out.append(f"| {label} | " + " | ".join(by_size.get(n, "") for n in sizes) + " |")
    return "\n".join(out) + "\n"


def _markdown_ratio(entry, bold):
    text = format_ratio(entry)
    return f"**{text}**" if bold and entry["status"] in ("pass", "miss") else text


def write_plot(report, path, figure_class):
    """Throughput (Gelem/s) vs size, log-log, one panel per dtype, one line per
    implementation: fastdrop at the headline thread count (solid), baselines and peers
    (dashed)."""
    headline = report["meta"]["headline_threads"]
    shown = [r for r in report["results"] if r["threads"] in (None, headline)]
    dtypes = list(dict.fromkeys(r["dtype"] for r in shown))
    labels = list(dict.fromkeys(r["label"] for r in shown))
    colour_of = dict(zip(labels, figure_colours(len(labels))))
    figure = figure_class(figsize=(6.5 * len(dtypes) + 3, 5.5), layout="constrained")
    axes = figure.subplots(1, len(dtypes), squeeze=False)[0]
    handles = {}
    for axis, dtype in zip(axes, dtypes):
        lines = {}
        for result in shown:
            if result["dtype"] == dtype:
                lines.setdefault(result["label"], []).append(
                    (result["size"], result["gelem_per_s"]))
        for label, points in lines.items():
            points.sort()
            baseline = not label.startswith(FASTDROP_IMPLEMENTATIONS)
            handles[label], = axis.plot([p[0] for p in points], [p[1] for p in points],
                                        "--" if baseline else "-", color=colour_of[label],
                                        marker="o", markersize=3, label=label)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("elements")
        axis.set_ylabel("Gelem/s")
        axis.set_title(f"{dtype}: throughput, fastdrop at {headline} thread(s)")
        axis.grid(True, which="both", alpha=0.3)
    axes[-1].legend([handles[label] for label in labels], labels, fontsize=7,
                    loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.savefig(path, dpi=120)


def figure_colours(count):
    """Distinct colours for up to 20 lines (matplotlib's default cycle has 10)."""
    from matplotlib import colormaps

    palette = colormaps["tab20"].colors
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))  # strong shades first
    return [palette[order[i % 20]] for i in range(count)]


def _figure_class():
    """matplotlib's Figure (no pyplot, no backend switch), or None when not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


# -- entry points --------------------------------------------------------------------------------

def benchmark(config, progress_stream=None):
    """Run the benchmark described by `config`; returns the report dict (also JSON-ready)."""
    default_threads = fastdrop.get_num_threads()
    default_level = fastdrop.simd_level()
    levels = list(fd_config.available_simd_levels())
    peers = load_peers(config)
    groups = plan_groups(config, default_level, levels, peers)
    total = sum(len(cases) * (config.rounds + 1) for _, _, cases in groups)
    progress = Progress(total, config.progress, progress_stream)
    started = time.time()
    try:
        with fd_config.threads(default_threads), fd_config.simd(default_level):
            for dtype, size, cases in groups:
                data = GroupData(dtype, size, peers)
                time_group(cases, data, peers, config.rounds, progress, default_threads,
                           default_level)
                del data
    finally:
        progress.close()
    results = [case_result(case) for _, _, cases in groups for case in cases]
    meta = {
        "fastdrop": fastdrop.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "simd_level": default_level,
        "cpu_simd_levels": levels, "threads": config.threads,
        "headline_threads": config.headline_threads, "default_threads": default_threads,
        "rounds": config.rounds, "sizes": config.sizes, "dtypes": list(config.dtypes),
        "target_size": target_size(config), "seed": SEED, "rate": RATE,
        "peers": {name: info["version"] for name, info in peers.items()},
        "torch_threads": peers["torch"]["threads"] if "torch" in peers else None,
        "implementations": IMPLEMENTATIONS, "command": config.command(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "wall_seconds": time.time() - started,
    }
    return {"meta": meta, "results": results,
            "ratios": compute_ratios(results, config, default_level),
            "growth": compute_growth(results, config, default_level)}


def run(args):
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"fastdrop bench: error: {exc}", file=sys.stderr)
        return 2
    figure_class = None
    if config.plot_path is not None:
        figure_class = _figure_class()
        if figure_class is None:
            print("fastdrop bench: error: --plot needs matplotlib, which is not installed "
                  "(pip install matplotlib, or pip install 'fastdrop[plot]')", file=sys.stderr)
            return 2
    report = benchmark(config)
    print(render_report(report))
    if config.json_path is not None:
        with open(config.json_path, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
        print(f"wrote {config.json_path}")
    if config.markdown_path is not None:
        with open(config.markdown_path, "w", encoding="utf-8") as handle:
            handle.write(render_markdown(report))
        print(f"wrote {config.markdown_path}")
    if config.plot_path is not None:
        write_plot(report, config.plot_path, figure_class)
        print(f"wrote {config.plot_path}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="fastdrop bench")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
