"""One self-contained HTML page: each claim of the dropout tutorial, its measurement, a verdict.

`run_all` runs every experiment of `experiments.EXPERIMENTS` (quick or full, over one or
more seeds); `render_html` turns the results into a page whose figures are embedded as
base64 PNG, so it needs no network and no files beside it.  Each `Claim` names the
conclusions that decide it: it *held* when all of them came out as the tutorial says,
*held in part* when some did, and *did not hold* when none did.
"""
import base64
import html
import io
import time
from dataclasses import dataclass

from . import experiments


@dataclass(frozen=True)
class Claim:
    key: str
    title: str
    sentence: str
    experiments: tuple  # whose figures and numbers are the evidence
    checks: object      # results -> list of (what was checked, answer, expected)


def _expect(name, *keys, value=True):
    """Checks that conclusions `keys` of experiment `name` came out as `value`."""
    return lambda results: [(k, results[name].conclusions[k], value) for k in keys]


def _both(*checkers):
    return lambda results: [c for checker in checkers for c in checker(results)]


def _datasize_signs(results):
    out = results["datasize"].conclusions
    return [(k, v, "+") for k, v in out.items() if k.startswith("sign of the gain")
            and int(k.split()[-2]) >= 250]


CLAIMS = (
    Claim("scaling", "Classical vs inverted scaling",
          "Classical dropout (keep x·m in training, scale by p at test) and inverted dropout "
          "(x·m/p in training, nothing at test) are one rule: the same units, outputs a factor "
          "1/p apart, and each one's training mean is its test-time output.",
          ("scaling",), _expect("scaling", "classical and inverted differ only by 1/p",
                                "each training mean matches its own test output")),
    Claim("expectation", "Expectation matching stops at the first nonlinearity",
          "Replacing the mask by its mean gives the exact expected pre-activation of the next "
          "affine layer, but not the expectation after a nonlinearity, so a deep scaled net "
          "only approximates the average of its thinned nets.",
          ("scaling", "nwgm"),
          _both(_expect("scaling", "expectation exact through the affine layer",
                        "expectation not exact after the ReLU"),
                _expect("nwgm", "not exact once nonlinear layers follow the dropout"))),
    Claim("nwgm", "The exact NWGM identity after an affine-softmax layer",
          "When the dropped units feed one affine map and a softmax, the weight-scaled net computes "
          "exactly the normalized geometric mean of all 2^n thinned nets; the gap opens with "
          "nonlinear layers in between and grows with their strength.",
          ("nwgm",), _expect("nwgm", "weight scaling = NWGM exactly after an affine-softmax layer",
                             "gap grows with the nonlinearity's strength")),
    Claim("geometric", "Geometric vs arithmetic mean",
          "The deterministic net is a normalized geometric mean, not an arithmetic mean, of the "
          "thinned nets' predictions, and the two differ measurably.",
          ("nwgm",), _expect("nwgm", "geometric and arithmetic means differ")),
    Claim("mc", "MC averaging vs weight scaling",
          "Averaging k stochastic passes (MC dropout) is worse than weight scaling for small k and "
          "catches up with it as k grows (Srivastava et al. 2014: about k = 50); here catching up "
          f"means coming within {experiments.MC_TOLERANCE} points of its test error.",
          ("mc",), _expect("mc", "one stochastic pass is worse than weight scaling", "more passes help",
                           f"MC averaging within {experiments.MC_TOLERANCE} points of weight "
                           "scaling by k = 50")),
    Claim("bagging", "Dropout vs bagging and ensembles",
          "Dropout borrows part of the benefit of model averaging at the cost of one net: it beats a "
          "single net with fewer SGD steps and 1/k of the memory of an explicit ensemble of k nets, "
          "whose members must each be trained and stored; bootstrap bagging, whose members see "
          "about 63 % of the digits, is the weaker kind of ensemble.",
          ("bagging",), _expect("bagging", "dropout beats one net", "the all-data ensemble beats one net",
                                "the all-data ensemble beats the bootstrap bag",
                                "the dropout net takes fewer SGD steps than the ensemble")),
    Claim("coadaptation", "Co-adaptation and sparsity",
          "A unit trained with dropout cannot rely on particular partners, so the net degrades less "
          "when hidden units are removed, and its hidden activations are sparser "
          "(Srivastava et al. 2014, Fig. 8).",
          ("coadaptation",),
          _expect("coadaptation", "dropout net loses less when half the hidden units are removed",
                  "dropout net's last hidden layer is sparser (fewer active units)")),
    Claim("rate", "The effect of the dropout rate",
          "A moderate hidden dropout rate beats none, and too much dropout (rate 0.8) underfits: "
          "training error rises and test error is worse than at the best rate (Fig. 9).",
          ("rate",), _expect("rate", "some hidden dropout beats none", "the best rate is moderate (0.2 to 0.6)",
                             "rate 0.8 is worse than the best rate",
                             "training error grows with the rate (0.8 vs 0)")),
    Claim("datasize", "The effect of data size",
          "With enough data for the net to overfit, dropout lowers the test error at every training-set "
          "size from a few hundred digits up, the gain shrinking as data grows (Fig. 10).",
          ("datasize",), _datasize_signs),
    Claim("digits", "The digits result",
          "On handwritten digits a dropout net has a lower test error than the same net without "
          "dropout (Hinton et al. 2012; Srivastava et al. 2014).",
          ("datasize", "bagging"),
          _both(_expect("datasize", "dropout helps at the largest size"),
                _expect("bagging", "dropout beats one net"))),
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
    """(verdict, checks): 'held', 'held in part' or 'did not hold', and what decided it."""
    checks = claim.checks(results)
    passed = sum(answer == expected for _, answer, expected in checks)
    if checks and passed == len(checks):
        return "held", checks
    return ("held in part" if passed else "did not hold"), checks


def _figure(result):
    if not experiments.matplotlib_available():
        return "<p class=note>(no figure: matplotlib is not installed)</p>"
    buffer = io.BytesIO()
    experiments.plot_result(result, buffer)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img alt="{html.escape(result.name)} figure" '
            f'src="data:image/png;base64,{data}">')


def _table_html(table):
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.cells())
    return (f"<table><caption>{html.escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
.verdict{display:inline-block;padding:.15em .6em;border-radius:.3em;font-weight:bold;color:#fff}
.held{background:#2a7d2a} .part{background:#b07d00} .not{background:#b02a2a}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right} td:first-child{text-align:left}
caption{text-align:left;font-style:italic;padding:.3em 0}
img{max-width:100%} .claim{font-size:1.05em} .note{color:#666;font-size:.9em}
ul.checks{list-style:none;padding-left:0} ul.checks li{margin:.2em 0}
"""

_BADGE = {"held": "held", "held in part": "part", "did not hold": "not"}


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
           f"{seconds:.0f} s. Digits: the bundled MNIST subset (4000 training, 1000 test).</p>",
           "<table><thead><tr><th>claim</th><th>verdict</th></tr></thead><tbody>"]
    for claim, result_verdict, _ in verdicts:
        out.append(f'<tr><td><a href="#{claim.key}">{html.escape(claim.title)}</a></td>'
                   f'<td><span class="verdict {_BADGE[result_verdict]}">{result_verdict}</span></td></tr>')
    out.append("</tbody></table>")
    figures = {}  # an experiment's figure is drawn once, however many claims show it
    for claim, result_verdict, checks in verdicts:
        out.append(f'<section class="claim-section" id="{claim.key}" data-verdict="{result_verdict}">')
        out.append(f"<h2>{html.escape(claim.title)}</h2>")
        out.append(f'<p class="claim"><b>Claim.</b> {html.escape(claim.sentence)}</p>')
        out.append(f'<p><b>Verdict:</b> <span class="verdict {_BADGE[result_verdict]}">'
                   f"{result_verdict}</span></p><p><b>Evidence.</b></p><ul class=checks>")
        for what, answer, expected in checks:
            mark = "✔" if answer == expected else "✘"
            out.append(f"<li>{mark} {html.escape(what)}: measured <b>{html.escape(str(answer))}</b>"
                       f" (the claim needs {html.escape(str(expected))})</li>")
        out.append("</ul>")
        for name in claim.experiments:
            result = results[name]
            items = "".join(f"<li>{html.escape(k)}: {html.escape(experiments._headline_value(v))}</li>"
                            for k, v in result.headline.items())
            out.append(f"<p>From <a href=\"#experiment-{name}\"><code>{name}</code></a>:</p><ul>{items}</ul>")
            if name not in figures:
                figures[name] = _figure(result)
            out.append(figures[name])
        out.append("</section>")
    out.append("<h2 id=experiments>The experiments in full</h2>")
    for name, result in results.items():
        out.append(f'<section class="experiment" id="experiment-{name}"><h3><code>fastdrop experiment '
                   f"{name}{' --quick' if quick else ''}</code> ({result.seconds:.0f} s)</h3>")
        if result.budget:
            out.append(f"<p class=note>Training budget: {html.escape(result.budget)}.</p>")
        out.extend(_table_html(t) for t in result.tables)
        items = "".join(f"<li>{html.escape(k)}: <b>{html.escape(str(v))}</b></li>"
                        for k, v in result.conclusions.items())
        out.append(f"<p>Conclusions (from the means):</p><ul class=conclusions>{items}</ul></section>")
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
