"""One self-contained HTML page: each claim of the dropout tutorial, its measurement, a verdict.

`run_all` runs every experiment of `experiments.EXPERIMENTS` (quick or full, over one or
more seeds); `render_html` turns the results into a page whose figures are embedded as
base64 PNG, so it needs no network and no files beside it.  The page opens with the
tutorial's picture of thinned networks (`thinned`), drawn from masks fastdrop samples.
Each `Claim` lists its own evidence (the checks that decide it, with the numbers behind
them) and names its own figure of `experiments.FIGURES`: no figure and no number list
appears under two claims.  A claim *held* when all of its checks came out as the tutorial
says, *held in part* when some did, and *did not hold* when none did.
"""
import base64
import html
import io
import math
import time
from dataclasses import dataclass

import numpy as np

from . import experiments, thinned
from .experiments import Spread


@dataclass(frozen=True)
class Check:
    """One line of evidence: what the claim needs, the numbers measured, whether they agree.

    ``passed`` is None for a number shown beside the checks without deciding the verdict;
    ``source`` is the (experiment, conclusion) the check reads, if it reads one."""
    text: str
    measured: str
    passed: object
    source: tuple = ()


@dataclass(frozen=True)
class Claim:
    key: str
    title: str
    sentence: str
    experiments: tuple  # the experiments whose results are its evidence
    evidence: object    # results -> list of Check
    figure: str         # its figure in experiments.FIGURES


# -- numbers, with their spread over seeds --------------------------------------------------

def _num(value, fmt="{:.3g}"):
    if isinstance(value, Spread):
        return value.format(fmt)
    if isinstance(value, (float, np.floating)):
        return fmt.format(value)
    return str(value)


def _pct(value):
    return _num(float(value) if isinstance(value, (int, np.integer)) else value, "{:.2f}") + " %"


def _series(result, *keys, scale=1.0):
    """``result.series[keys...]`` as a Spread over seeds (mean ± sd) when several were run."""
    mean, sd = result.series, result.series_sd
    for key in keys:
        mean = mean[key]
        sd = sd[key] if isinstance(sd, (dict, list)) else None
    if sd is None or len(result.seeds) < 2:
        return scale * mean if isinstance(mean, (int, float)) else mean
    return Spread(scale * float(mean), scale * float(sd), len(result.seeds))


def _conclusion(results, name, key, expected=True):
    """A check's verdict, from conclusion `key` of experiment `name`, and its source."""
    return dict(passed=results[name].conclusions[key] == expected, source=(name, key))


# -- the claims ---------------------------------------------------------------------------------

def _scaling_evidence(results):
    r = results["scaling"]
    samples = r.config["samples"]
    return [
        Check("classical and inverted dropout drop the same units, their outputs exactly 1/p apart",
              f"same units at all {samples} masks: {r.headline['classical and inverted keep the same units']}; "
              f"max |inverted · p − classical| = {_num(r.headline['max |inverted * p - classical|'])}",
              **_conclusion(results, "scaling", "classical and inverted differ only by 1/p")),
        Check("each convention's mean training output is its own test-time output",
              f"largest relative gap after {samples} masks: classical "
              f"{_num(_series(r, 'mean_gaps', 0))}, inverted {_num(_series(r, 'mean_gaps', 1))} "
              f"(sampling noise ~ 1/√{samples} = {1 / math.sqrt(samples):.1e})",
              **_conclusion(results, "scaling", "each training mean matches its own test output")),
    ]


def _deepest_gaps(r):
    depth = max(r.series["depths"])
    return depth, ", ".join(f"{a} {_num(_series(r, 'gaps', a, -1))}" for a in r.series["gaps"]
                            if a != "linear")


def _expectation_evidence(results):
    r, n = results["scaling"], results["nwgm"]
    depth, deep = _deepest_gaps(n)
    return [
        Check("the expected input of the next affine layer is exactly the scaled net's",
              f"max |E − deterministic| after the affine layer: {_num(_series(r, 'gaps', 1))}",
              **_conclusion(results, "scaling", "expectation exact through the affine layer")),
        Check("after the ReLU the expectation is no longer the scaled net's",
              f"max |E − deterministic| after the ReLU: {_num(_series(r, 'gaps', 2))}; at the "
              f"logits: {_num(_series(r, 'gaps', 3))}",
              **_conclusion(results, "scaling", "expectation not exact after the ReLU")),
        Check("so with nonlinear layers after the dropout the scaled net is not the thinned nets' NWGM",
              f"max |weight scaling − NWGM| with {depth} nonlinear layers after the dropout: {deep}",
              **_conclusion(results, "nwgm", "not exact once nonlinear layers follow the dropout")),
    ]


def _nwgm_evidence(results):
    r = results["nwgm"]
    s = r.series
    return [
        Check("weight scaling equals the NWGM of all 2^n thinned nets after an affine-softmax layer",
              f"max |weight scaling − NWGM| at depth 0 and through linear layers: "
              f"{_num(r.headline['max |det - NWGM| where exact (depth 0 or linear)'])} (float64 "
              f"rounding is ~1e-16), over all 2^{r.config['units']} masks",
              **_conclusion(results, "nwgm", "weight scaling = NWGM exactly after an affine-softmax layer")),
        Check("the gap grows with the nonlinearity's strength",
              f"{s['scale_activation']}, 2 layers: {_num(_series(r, 'scale_gaps', 0))} at weight scale "
              f"{s['scales'][0]:g}, {_num(_series(r, 'scale_gaps', -1))} at {s['scales'][-1]:g}",
              **_conclusion(results, "nwgm", "gap grows with the nonlinearity's strength")),
    ]


def _geometric_evidence(results):
    r = results["nwgm"]
    return [
        Check("the normalized geometric mean and the arithmetic mean of the thinned nets differ",
              f"largest |NWGM − arithmetic mean| over all nets: "
              f"{_num(r.headline['max |NWGM - AM| (geometric vs arithmetic mean)'])}",
              **_conclusion(results, "nwgm", "geometric and arithmetic means differ")),
        Check("how often the difference changes the predicted class",
              f"weight scaling and the arithmetic mean agree on the class of at least "
              f"{_num(r.headline['argmax agreement, weight scaling vs AM % (lowest)'], '{:.1f}')} % "
              f"of the inputs of every net", None),
    ]


def _mc_evidence(results):
    r = results["mc"]
    s = r.series
    tolerance = experiments.MC_TOLERANCE
    matching = f"smallest k within {tolerance} points of weight scaling"
    return [
        Check("one stochastic pass is worse than weight scaling",
              f"k = 1: {_pct(_series(r, 'means', 0, scale=100))}; weight scaling: "
              f"{_pct(_series(r, 'scaled', scale=100))}",
              **_conclusion(results, "mc", "one stochastic pass is worse than weight scaling")),
        Check("averaging more passes helps",
              f"k = {s['ks'][-1]}: {_pct(_series(r, 'means', -1, scale=100))}",
              **_conclusion(results, "mc", "more passes help")),
        Check(f"MC averaging comes within {tolerance} points of weight scaling by k = 50",
              f"{matching} (from the mean curve): {_num(_matching_k(s))}",
              **_conclusion(results, "mc", f"MC averaging within {tolerance} points of weight "
                                           "scaling by k = 50")),
        Check("the cost of MC averaging",
              f"{_num(r.headline['MC passes per second (1000 inputs)'], '{:.0f}')} stochastic passes "
              f"over the 1000 test digits per second, against one pass for weight scaling", None),
    ]


def _matching_k(s):
    return experiments._matching_k(s["ks"], s["means"], s["scaled"])


def _bagging_evidence(results):
    r = results["bagging"]
    s = r.series
    k = r.config["k"]
    errors = lambda i: _pct(_series(r, "errors", i, scale=100))
    return [
        Check("one dropout net beats the same net without dropout",
              f"dropout {errors(3)}; one net {errors(0)}",
              **_conclusion(results, "bagging", "dropout beats one net")),
        Check(f"an ensemble of {k} nets trained on all the data beats one net",
              f"ensemble of {k}: {errors(2)}",
              **_conclusion(results, "bagging", "the all-data ensemble beats one net")),
        Check("the all-data ensemble beats the bootstrap bag, whose members see ~63 % of the digits",
              f"bag of {k}: {errors(1)}",
              **_conclusion(results, "bagging", "the all-data ensemble beats the bootstrap bag")),
        Check("the dropout net takes fewer SGD steps than the ensemble",
              f"dropout {_num(_series(r, 'steps', 3), '{:.0f}')} steps; ensemble "
              f"{_num(_series(r, 'steps', 2), '{:.0f}')}",
              **_conclusion(results, "bagging", "the dropout net takes fewer SGD steps than the ensemble")),
        Check("what the ensemble costs beside it",
              f"{_num(r.headline['train time ensemble / dropout'], '{:.1f}')} × the training time and "
              f"{_num(r.headline['parameter memory ensemble / dropout'], '{:.1f}')} × the parameter "
              f"memory of the dropout net", None),
    ]


def _coadaptation_evidence(results):
    r = results["coadaptation"]
    s = r.series
    half = min(range(len(s["removals"])), key=lambda i: abs(s["removals"][i] - 0.5))
    curve = lambda name: (f"{name}: {_pct(_series(r, 'errors', name, 0, scale=100))} → "
                          f"{_pct(_series(r, 'errors', name, half, scale=100))}")
    return [
        Check(f"the dropout net loses less when {s['removals'][half]:.0%} of the hidden units are removed",
              f"test error, nothing → {s['removals'][half]:.0%} removed: {curve('no dropout')}; "
              f"{curve('dropout')}",
              **_conclusion(results, "coadaptation",
                            "dropout net loses less when half the hidden units are removed")),
        Check("its last hidden layer is sparser",
              f"activations > 0: no dropout {_pct(_series(r, 'active_share', 'no dropout'))}, "
              f"dropout {_pct(_series(r, 'active_share', 'dropout'))}",
              **_conclusion(results, "coadaptation",
                            "dropout net's last hidden layer is sparser (fewer active units)")),
    ]


def _rate_evidence(results):
    r = results["rate"]
    s = r.series["fixed n"]
    rates = s["rates"]
    best = int(np.argmin(s["test"]))
    test = lambda i: _pct(_series(r, "fixed n", "test", i, scale=100))
    train = lambda i: _pct(_series(r, "fixed n", "train", i, scale=100))
    zero, high = rates.index(0.0), rates.index(0.8)
    return [
        Check("some hidden dropout beats none",
              f"test error at rate 0: {test(zero)}; at the best rate ({rates[best]:g}): {test(best)}",
              **_conclusion(results, "rate", "some hidden dropout beats none")),
        Check("the best rate is moderate (0.2 to 0.6)",
              f"lowest mean test error at rate {rates[best]:g} of {', '.join(f'{x:g}' for x in rates)}",
              **_conclusion(results, "rate", "the best rate is moderate (0.2 to 0.6)")),
        Check("rate 0.8 is worse than the best rate", f"test error at rate 0.8: {test(high)}",
              **_conclusion(results, "rate", "rate 0.8 is worse than the best rate")),
        Check("training error grows with the rate (0.8 vs 0)",
              f"training error at rate 0: {train(zero)}; at 0.8: {train(high)}",
              **_conclusion(results, "rate", "training error grows with the rate (0.8 vs 0)")),
    ]


def _datasize_evidence(results):
    r = results["datasize"]
    out = []
    for i, n in enumerate(r.series["sizes"]):
        key = f"sign of the gain at {n} digits"
        gain = f"test error without minus with dropout: {_num(_series(r, 'gains', i), '{:+.2f}')} points"
        if n >= 250:
            out.append(Check(f"dropout lowers the test error at {n} digits", gain,
                             **_conclusion(results, "datasize", key, expected="+")))
        else:
            out.append(Check(f"at {n} digits (too few for the claim)", gain, None, ("datasize", key)))
    return out


def _digits_evidence(results):
    r = results["datasize"]
    n = r.series["sizes"][-1]
    error = lambda name: _pct(_series(r, "errors", name, -1, scale=100))
    out = [Check(f"trained on all {n} training digits, the dropout net has the lower test error",
                 f"no dropout {error('no dropout')}; dropout {error('dropout')}",
                 **_conclusion(results, "datasize", "dropout helps at the largest size"))]
    if r.seed_series:
        wins = sum(s["errors"]["dropout"][-1] < s["errors"]["no dropout"][-1] for s in r.seed_series)
        out.append(Check("at each seed on its own", f"lower at {wins} of {len(r.seed_series)} seeds",
                         None))
    return out


CLAIMS = (
    Claim("scaling", "Classical vs inverted scaling",
          "Classical dropout (keep x·m in training, scale by p at test) and inverted dropout "
          "(x·m/p in training, nothing at test) are one rule: the same units, outputs a factor "
          "1/p apart, and each one's training mean is its test-time output.",
          ("scaling",), _scaling_evidence, "conventions"),
    Claim("expectation", "Expectation matching stops at the first nonlinearity",
          "Replacing the mask by its mean gives the exact expected pre-activation of the next "
          "affine layer, but not the expectation after a nonlinearity, so a deep scaled net "
          "only approximates the average of its thinned nets.",
          ("scaling", "nwgm"), _expectation_evidence, "expectation"),
    Claim("nwgm", "The exact NWGM identity after an affine-softmax layer",
          "When the dropped units feed one affine map and a softmax, the weight-scaled net computes "
          "exactly the normalized geometric mean of all 2^n thinned nets; the gap opens with "
          "nonlinear layers in between and grows with their strength.",
          ("nwgm",), _nwgm_evidence, "nwgm"),
    Claim("geometric", "Geometric vs arithmetic mean",
          "The deterministic net is a normalized geometric mean, not an arithmetic mean, of the "
          "thinned nets' predictions, and the two differ measurably.",
          ("nwgm",), _geometric_evidence, "geometric"),
    Claim("mc", "MC averaging vs weight scaling",
          "Averaging k stochastic passes (MC dropout) is worse than weight scaling for small k and "
          "catches up with it as k grows (Srivastava et al. 2014: about k = 50); here catching up "
          f"means coming within {experiments.MC_TOLERANCE} points of its test error.",
          ("mc",), _mc_evidence, "mc"),
    Claim("bagging", "Dropout vs bagging and ensembles",
          "Dropout borrows part of the benefit of model averaging at the cost of one net: it beats a "
          "single net with fewer SGD steps and 1/k of the memory of an explicit ensemble of k nets, "
          "whose members must each be trained and stored; bootstrap bagging, whose members see "
          "about 63 % of the digits, is the weaker kind of ensemble.",
          ("bagging",), _bagging_evidence, "bagging"),
    Claim("coadaptation", "Co-adaptation and sparsity",
          "A unit trained with dropout cannot rely on particular partners, so the net degrades less "
          "when hidden units are removed, and its hidden activations are sparser "
          "(Srivastava et al. 2014, Fig. 8).",
          ("coadaptation",), _coadaptation_evidence, "coadaptation"),
    Claim("rate", "The effect of the dropout rate",
          "A moderate hidden dropout rate beats none, and too much dropout (rate 0.8) underfits: "
          "training error rises and test error is worse than at the best rate (Fig. 9).",
          ("rate",), _rate_evidence, "rate"),
    Claim("datasize", "The effect of data size",
          "With enough data for the net to overfit, dropout lowers the test error at every training-set "
          "size from a few hundred digits up, the gain shrinking as data grows (Fig. 10).",
          ("datasize",), _datasize_evidence, "datasize"),
    Claim("digits", "The digits result",
          "On handwritten digits a dropout net has a lower test error than the same net without "
          "dropout (Hinton et al. 2012; Srivastava et al. 2014).",
          ("datasize",), _digits_evidence, "digits"),
)


def run_all(*, quick=False, seed=0, seeds=1, verbose=False, names=None):
    """Every experiment (or those in `names`), in registry order: name -> ExperimentResult."""
    results = {}
    with experiments.sharing_trained_nets():
        for name in names or experiments.EXPERIMENTS:
            experiments._log(verbose, f"report: running {name}")
            results[name] = experiments.run_experiment(name, quick=quick, seed=seed, seeds=seeds,
                                                       verbose=verbose)
    return results


def verdict(claim, results):
    """(verdict, checks): 'held', 'held in part' or 'did not hold', and the evidence."""
    checks = claim.evidence(results)
    deciding = [c.passed for c in checks if c.passed is not None]
    if deciding and all(deciding):
        return "held", checks
    return ("held in part" if any(deciding) else "did not hold"), checks


# -- the page -----------------------------------------------------------------------------------

def _png(draw):
    buffer = io.BytesIO()
    draw(buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure_html(draw, alt, caption):
    if not experiments.matplotlib_available():
        return "<p class=note>(no figure: matplotlib is not installed)</p>"
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{_png(draw)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _spread_caption(results, names):
    seeds = sorted({s for name in names for s in results[name].seeds})
    if len(seeds) > 1:
        return f"Error bars and ± values: standard deviation over seeds {', '.join(map(str, seeds))}."
    return f"One seed ({seeds[0]}): no spread to show."


def _table_html(table):
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.cells())
    return (f"<table><caption>{html.escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;
line-height:1.4}
h1{font-size:1.6em} h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
.verdict{display:inline-block;padding:.15em .6em;border-radius:.3em;font-weight:bold;color:#fff}
.held{background:#2a7d2a} .part{background:#b07d00} .not{background:#b02a2a}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right} td:first-child{text-align:left}
caption{text-align:left;font-style:italic;padding:.3em 0}
figure{margin:1em 0} img{max-width:100%} figcaption{color:#555;font-size:.85em}
.claim{font-size:1.05em} .note{color:#666;font-size:.9em}
ul.checks{list-style:none;padding-left:0} ul.checks li{margin:.35em 0}
.measured{color:#333} .mark{display:inline-block;width:1.3em;font-weight:bold}
.yes{color:#2a7d2a} .no{color:#b02a2a} .info{color:#666}
"""

_BADGE = {"held": "held", "held in part": "part", "did not hold": "not"}

THINNED_ALT = ("A {sizes} network drawn at three consecutive training steps: the hidden units "
               "that step's dropout mask drops are ghosted and their connections hidden, every "
               "other connection drawn with the same shared weights; beside them the network "
               "used at test time, every unit present and the weights out of the hidden units "
               "scaled by p.")


def _thinned_html(seed):
    data = thinned.thinned_steps(seed=seed)
    counts = "; ".join(f"step {t + 1}: {', '.join(c)}" for t, c in enumerate(data.kept_counts()))
    alt = THINNED_ALT.format(sizes="-".join(map(str, data.sizes)))
    caption = (f"Masks of fastdrop.nn Dropout layers (keep p = {data.keep_prob:g}, seed {seed}); "
               f"hidden units kept, per layer — {counts}. Each SGD step (plain SGD, one example) "
               f"left every connection of its dropped units unchanged: "
               f"{'yes, at every step' if all(data.untouched) else 'NO'}.")
    return [
        '<section class="picture" id="thinned">',
        "<h2>The picture behind the claims: one network, a new thinned network each step</h2>",
        "<p>Dropout does not change the architecture. At each training step it samples a mask "
        "and trains only the thinned network the mask leaves; every thinned network uses the "
        "same weights, so one set of weights is trained under many random partial failures. "
        "At test time no mask is sampled: every unit is present and the weights out of the "
        "dropped layers are scaled by p (inverted dropout has already divided by p in "
        "training). The claims below are about how good that single scaled network is.</p>",
        _figure_html(lambda f: thinned.plot_thinned(data, f), alt, caption),
        "</section>",
    ]


def _check_html(check):
    if check.passed is None:
        mark = '<span class="mark info">•</span>'
    elif check.passed:
        mark = '<span class="mark yes">✔</span>'
    else:
        mark = '<span class="mark no">✘</span>'
    return (f"<li>{mark}{html.escape(check.text)}: "
            f'<span class="measured">{html.escape(check.measured)}</span></li>')


def render_html(results, *, quick, seeds, seconds):
    """The page, as a string."""
    mode = "quick" if quick else "full"
    first = next(iter(results.values()))
    seed_list = first.seeds or [first.config.get("seed")]
    verdicts = [(claim, *verdict(claim, results)) for claim in CLAIMS
                if all(name in results for name in claim.experiments)]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>fastdrop: the dropout tutorial's claims, measured</title>",
           f"<style>{_STYLE}</style></head><body>",
           "<h1>The dropout tutorial's claims, measured</h1>",
           f"<p class=note>{mode} configuration, seeds {html.escape(str(seed_list))} "
           f"({'mean ± sd over seeds' if seeds > 1 else 'one seed'}); all experiments took "
           f"{seconds:.0f} s. Digits: the bundled MNIST subset (4000 training, 1000 test). "
           "✔ the measurement agrees with the claim, ✘ it does not, • a number shown "
           "beside them.</p>",
           "<table><thead><tr><th>claim</th><th>verdict</th></tr></thead><tbody>"]
    for claim, result_verdict, _ in verdicts:
        out.append(f'<tr><td><a href="#{claim.key}">{html.escape(claim.title)}</a></td>'
                   f'<td><span class="verdict {_BADGE[result_verdict]}">{result_verdict}</span></td></tr>')
    out.append("</tbody></table>")
    out.extend(_thinned_html(int(seed_list[0])))
    shown = set()  # the conclusions a claim shows; the rest are listed with their experiment
    for claim, result_verdict, checks in verdicts:
        figure = experiments.FIGURES[claim.figure]
        shown.update(c.source for c in checks if c.source)
        alt = figure.alt + (" Error bars: ± sd over seeds." if seeds > 1 else "")
        out += [f'<section class="claim-section" id="{claim.key}" data-verdict="{result_verdict}">',
                f"<h2>{html.escape(claim.title)}</h2>",
                f'<p class="claim"><b>Claim.</b> {html.escape(claim.sentence)}</p>',
                f'<p><b>Verdict:</b> <span class="verdict {_BADGE[result_verdict]}">{result_verdict}'
                "</span></p><p><b>Evidence.</b></p><ul class=checks>",
                *map(_check_html, checks), "</ul>",
                _figure_html(lambda f: experiments.plot_figure(claim.figure, results, f), alt,
                             _spread_caption(results, figure.experiments)),
                "<p class=note>All numbers: " + ", ".join(
                    f'<a href="#experiment-{n}"><code>{n}</code></a>' for n in claim.experiments)
                + ".</p></section>"]
    out.append("<h2 id=experiments>The experiments in full</h2>")
    for name, result in results.items():
        out.append(f'<section class="experiment" id="experiment-{name}"><h3><code>fastdrop experiment '
                   f"{name}{' --quick' if quick else ''}</code> ({result.seconds:.0f} s)</h3>")
        if result.budget:
            out.append(f"<p class=note>Training budget: {html.escape(result.budget)}.</p>")
        out.extend(_table_html(t) for t in result.tables)
        rest = {k: v for k, v in result.conclusions.items() if (name, k) not in shown}
        if rest:
            items = "".join(f"<li>{html.escape(k)}: <b>{html.escape(str(v))}</b></li>"
                            for k, v in rest.items())
            out.append(f"<p>Other conclusions (from the means):</p><ul class=conclusions>{items}</ul>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(path, *, quick=False, seed=0, seeds=1, verbose=False):
    """Run every experiment and write the page to `path`; returns (results, verdicts)."""
    start = time.perf_counter()
    results = run_all(quick=quick, seed=seed, seeds=seeds, verbose=verbose)
    page = render_html(results, quick=quick, seeds=seeds, seconds=time.perf_counter() - start)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return results, {claim.key: verdict(claim, results)[0] for claim in CLAIMS}
