"""The project's target ratios and their pass/miss verdicts.

    python bench/targets.py [fastdrop bench options]    # run `fastdrop bench`, then judge it
    python bench/targets.py --from out.json             # judge a saved `fastdrop bench --json`

The library reports ratios of medians (`fastdrop bench`); whether they meet the project's
goals is decided here, next to the other suites in bench/ that import these tables
(bench_training.py, bench_variants.py, bench_mc.py).  A target is (op, bound): the ratio
passes when ``ratio op bound`` holds; the bound itself passes.
"""
import json
import sys

import sitepath

sitepath.prefer_built_source_tree()

#: `fastdrop bench` headline ratios (its "ratios" list), by key; at 2^24 when measured.
KERNELS = {
    "forward_f32_bits": ("<=", 1.0),
    "forward_f64_bits": ("<=", 1.0),
    "apply_mask": ("<=", 0.9),
    "backward_regen": ("<=", 1.0),
    "vs_reference": (">=", 10.0),
    "vs_torch": (">=", 40.0),
    "vs_jax": (">=", 30.0),
}
#: The same headline ratios over the floor (y = 2x on fastdrop's threads, same run, same
#: arrays) instead of np.multiply; at 2^24 when measured.
KERNELS_FLOOR = {
    "forward_f32_bits": ("<=", 1.2),
    "apply_mask": ("<=", 1.1),
}
#: Every public function on 1024 float32 elements over np.multiply on the same array.
SMALL_CALL = ("<=", 2.0)
#: Forward float32 with bits at one SIMD level over np.multiply, by (level, size).
SIMD_LEVELS = {("avx2", 1 << 16): ("<=", 6.0), ("avx2", 1 << 24): ("<=", 1.1)}
#: Forward float32 with bits at one SIMD level over the floor, by (level, size).
SIMD_LEVELS_FLOOR = {("avx2", 1 << 24): ("<=", 1.2), ("avx512", 1 << 24): ("<=", 1.2)}
#: Throughput of a lower SIMD level over AVX-512's at 2^24 (forward float32 with bits).
LEVEL_THROUGHPUT = {"avx2": (">=", 0.6)}
#: Forward float32 with bits: its ratio to np.multiply at the largest size over the best such
#: ratio at any size >= 2^16; above 1 means a cost that grows faster than the array.
GROWTH = ("<=", 1.25)
GROWTH_FROM_SIZE = 1 << 16

#: The mask stream (`fastdrop bench`'s "mask_stream" cells): time over the floor at the same
#: thread count, by (level, threads, size, op, rate); the backward that regenerates the mask
#: has the forward's targets.
MASK_STREAM = {}
for _op in ("forward", "backward_regen"):
    MASK_STREAM.update({
        ("avx2", 2, 1 << 24, _op, 0.2): ("<=", 1.10), ("avx2", 2, 1 << 24, _op, 0.5): ("<=", 1.10),
        ("avx2", 1, 1 << 24, _op, 0.2): ("<=", 1.20), ("avx2", 1, 1 << 24, _op, 0.5): ("<=", 1.10),
        ("avx2", 1, 1 << 17, _op, 0.2): ("<=", 2.0), ("avx2", 1, 1 << 17, _op, 0.5): ("<=", 1.3),
        ("scalar", 1, 1 << 24, _op, 0.2): ("<=", 4.0), ("scalar", 1, 1 << 24, _op, 0.5): ("<=", 1.6),
    })
MASK_STREAM[("avx2", 1, 1 << 24, "sample_mask", 0.5)] = ("<=", 0.25)

#: bench_training.py: one training step's time over another's.
TRAINING = {
    "dropout / plain": ("<=", 1.05),
    "dropout (1 kernel thread) / plain": ("<=", 1.05),
    "dropout_split / plain": ("<=", 1.05),
    "per_batch_0.5 / dropout_0.5": ("<=", 0.65),
    "per_batch_0.5_thin / dropout_0.5": ("<=", 0.65),
    "dropout / torch_dropout": ("<=", 1.0),
    "plain / torch_plain": ("<=", 1.0),
    "epoch: fit dropout / torch_dropout": ("<=", 1.0),
}
#: bench_variants.py: a variant's time over its group's baseline.
VARIANTS = {
    "channel dropout, channels first": ("<=", 1.2),
    "channel dropout, channels last": ("<=", 1.2),
    "time-locked dropout": ("<=", 1.2),
    "gaussian_dropout": ("<=", 2.0),
    "dropout float16": ("<=", 1.0),
}
#: bench_sklearn.py: one epoch's time over MLPClassifier's, and the test-error margin (points
#: of %, MLPClassifier at its best alpha minus the dropout MLP, mean over seeds).
SKLEARN = {
    "epoch: dropout 0 / MLPClassifier": ("<=", 0.8),
    "epoch: dropout 0.5 / MLPClassifier": ("<=", 0.8),
    "test error: MLPClassifier best alpha - dropout (points)": (">=", 0.3),
}
#: bench_mc.py: share of mc_predict-style loop time spent making and applying masks.
MC_MASK_SHARE = ("<=", 0.05)
#: bench_mc.py: mc_predict's time (row tiles, the same bits for any split) over the time of
#: the stacked path it replaced (whole passes on the BLAS's threads): at most 10 % more.
MC_TILE_COST = ("<=", 1.1)


def verdict(value, target):
    """"pass" or "miss" for a ratio against a target (op, bound); "" without a target."""
    if target is None:
        return ""
    op, bound = target
    return "pass" if (value <= bound if op == "<=" else value >= bound) else "miss"


def describe(target):
    return "" if target is None else f"{target[0]} {target[1]:g}"


def judge_report(report):
    """[(what, threads, value, target)] for every target a `fastdrop bench` report covers."""
    meta = report["meta"]
    rows = [(f"{e['what']} (n = {e['size']})", e["threads"], e["value"], KERNELS[e["key"]])
            for e in report["ratios"] if e["key"] in KERNELS]
    rows += [(f"{e['what'].replace('np.multiply', 'the floor')} (n = {e['size']})",
              e["threads"], e["x_floor"], KERNELS_FLOOR[e["key"]])
             for e in report["ratios"] if e["key"] in KERNELS_FLOOR and e.get("x_floor")]
    small = next(g for g in report["groups"] if g["kind"] == "small_calls")
    rows += [(f"small call {r['call']} / np.multiply", r["threads"], r["x_multiply"],
              SMALL_CALL) for r in small["results"] if r["impl"] != "np.multiply"]
    levels = {(row["level"], row["size"]): row for row in report["simd_levels"]}
    for (level, size), row in levels.items():
        if (level, size) in SIMD_LEVELS:
            rows.append((f"{level} forward f32 + bits / np.multiply (n = {size})",
                         row["threads"], row["x_multiply"], SIMD_LEVELS[level, size]))
        if (level, size) in SIMD_LEVELS_FLOOR and row.get("x_floor"):
            rows.append((f"{level} forward f32 + bits / the floor (n = {size})",
                         row["threads"], row["x_floor"], SIMD_LEVELS_FLOOR[level, size]))
        top = levels.get(("avx512", size))
        if size == 1 << 24 and level in LEVEL_THROUGHPUT and top is not None:
            rows.append((f"{level} / avx512 throughput, forward f32 + bits (n = 2^24)",
                         row["threads"], top["seconds"] / row["seconds"],
                         LEVEL_THROUGHPUT[level]))
    for cell in report.get("mask_stream", []):
        key = (cell["level"], cell["threads"], cell["size"], cell["op"], cell["rate"])
        if key in MASK_STREAM:
            rows.append((f"mask stream: {cell['level']} {cell['op']} rate {cell['rate']} / the "
                         f"floor (n = {cell['size']})", cell["threads"], cell["x_floor"],
                         MASK_STREAM[key]))
    for threads in meta["threads"]:
        curve = sorted((g["size"], r["x_multiply"]) for g in report["groups"]
                       if g["kind"] == "throughput" and g["dtype"] == "float32"
                       and g["size"] >= GROWTH_FROM_SIZE for r in g["results"]
                       if (r["impl"], r["threads"], r["simd"])
                       == ("dropout+bits", threads, meta["simd_level"]))
        if len(curve) >= 2:
            rows.append(("growth: f32 + bits over np.multiply, largest size / best", threads,
                         curve[-1][1] / min(ratio for _, ratio in curve), GROWTH))
    return rows


def print_verdicts(rows, stream=sys.stdout):
    """One line per (what, threads, value, target); returns the number of misses."""
    misses = 0
    for what, threads, value, target in rows:
        outcome = verdict(value, target)
        misses += outcome == "miss"
        where = "" if threads is None else f" [{threads} thread(s)]"
        print(f"  {outcome or '-':4} {value:9.3f} {describe(target):>8}  {what}{where}",
              file=stream)
    return misses


def main(argv):
    if argv[:1] == ["--from"]:
        with open(argv[1], encoding="utf-8") as handle:
            report = json.load(handle)
    else:
        import argparse

        from fastdrop.cli import bench

        parser = argparse.ArgumentParser(prog="python bench/targets.py")
        bench.add_arguments(parser)
        args = parser.parse_args(argv)
        report = bench.benchmark(bench.Options(args),
                                 progress=None if args.no_progress else sys.stderr)
        print(bench.render_text(report), end="\n\n")
    print("Targets:")
    misses = print_verdicts(judge_report(report))
    print(f"{misses} target(s) missed" if misses else "every measured target passes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
