"""The quick configuration of every experiment reaches the tutorial's conclusions.

One module-scoped run of all quick experiments (as ``fastdrop report --quick`` runs
them, trained nets shared between experiments) feeds every test here: each claim of
the report must hold, and the page built from the run must be complete.  The quick
run is the fast configuration of every conclusion; set FASTDROP_FULL_EXPERIMENTS=1 to
also run the full configurations (tens of minutes) and check that both agree.
"""
import os
from html.parser import HTMLParser

import pytest

from fastdrop.theory import experiments, report


@pytest.fixture(scope="module")
def quick_results():
    return report.run_all(quick=True, seed=0)


def test_every_experiment_states_conclusions_and_budget(quick_results):
    assert list(quick_results) == list(experiments.EXPERIMENTS)
    for name, result in quick_results.items():
        assert result.conclusions, name
        if name not in ("scaling", "nwgm"):  # the trained ones
            assert f"or at {result.config['max_steps']} steps" in result.budget
            assert "training budget: early stopping" in str(result)


#: claims settled by exact enumeration over all masks: they hold at any seed
EXACT_CLAIMS = ("scaling", "expectation", "nwgm", "geometric")


@pytest.mark.parametrize("claim", report.CLAIMS, ids=lambda c: c.key)
def test_claim_verdict_follows_its_checks(quick_results, claim):
    held, checks = report.verdict(claim, quick_results)
    deciding = [c.passed for c in checks if c.passed is not None]
    assert deciding
    assert held == ("held" if all(deciding) else "held in part" if any(deciding) else "did not hold")
    for check in checks:
        assert check.text and check.measured
        if check.source:  # a check reads a conclusion of one of the claim's own experiments
            name, key = check.source
            assert name in claim.experiments and key in quick_results[name].conclusions
    if claim.key in EXACT_CLAIMS:
        assert held == "held", [c for c in checks if c.passed is False]


def test_datasize_gain_is_the_difference_of_the_errors(quick_results):
    s = quick_results["datasize"].series
    assert len(s["gains"]) == 3
    for gain, plain, dropped in zip(s["gains"], s["errors"]["no dropout"], s["errors"]["dropout"]):
        assert gain == pytest.approx(100 * (plain - dropped))


def test_bagging_has_the_ensemble_baseline(quick_results):
    result = quick_results["bagging"]
    labels = [row[0] for row in result.tables[0].rows]
    assert any("all data, own seeds, mean" in label for label in labels)
    assert any("all data, own seeds, NWGM" in label for label in labels)
    k = result.config["k"]
    assert result.headline["parameter memory ensemble / dropout"] == k


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images, self.links, self.verdicts = {}, [], [], {}
        self._section = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and "claim-section" in (attrs.get("class") or ""):
            self._section = attrs["id"]
            self.sections[self._section] = attrs.get("data-verdict")
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append(attrs[key])


def test_report_page_structure(quick_results):
    page_text = report.render_html(quick_results, quick=True, seeds=1, seconds=1.0)
    page = _Page()
    page.feed(page_text)
    assert set(page.sections) == {c.key for c in report.CLAIMS}
    assert set(page.sections.values()) <= {"held", "held in part", "did not hold"}
    for link in page.links:  # self-contained: anchors and embedded data only
        assert link.startswith("#") or link.startswith("data:image/png;base64,"), link[:60]
    assert "http://" not in page_text and "https://" not in page_text
    if experiments.matplotlib_available():  # the thinned networks, then one per claim
        assert len(page.images) == len(report.CLAIMS) + 1 == len(set(page.images))
        assert all(src.startswith("data:image/png;base64,iVBORw0KGgo") for src in page.images)
        assert {name for c in report.CLAIMS for name in c.experiments} <= set(quick_results)
    for name in quick_results:
        assert f'id="experiment-{name}"' in page_text


@pytest.mark.skipif(not os.environ.get("FASTDROP_FULL_EXPERIMENTS"),
                    reason="full experiments take tens of minutes: set FASTDROP_FULL_EXPERIMENTS=1")
@pytest.mark.parametrize("name", list(experiments.EXPERIMENTS))
def test_quick_and_full_reach_the_same_conclusions(quick_results, name):
    full = experiments.run_experiment(name, quick=False)
    quick = quick_results[name].conclusions
    shared = set(quick) & set(full.conclusions)
    assert shared
    assert {k: quick[k] for k in shared} == {k: full.conclusions[k] for k in shared}
