"""`fastdrop report OUT.html` through `fastdrop.cli.main`, with every experiment made tiny."""
import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from fastdrop import cli
from fastdrop.theory import experiments, report

TRAINED = dict(hidden=(8,), max_steps=20, patience=10)
TINY = {
    "scaling": dict(units=4, width=4, inputs=3, samples=200),
    "nwgm": dict(units=4, depths=(0, 1), activations=("linear", "tanh"), inputs=5, scales=(1.0, 2.0),
                 width=4),
    "bagging": dict(k=2, n_train=200, **TRAINED),
    "coadaptation": dict(n_train=200, removals=(0.0, 0.5), repeats=1, **TRAINED),
    "rate": dict(rates=(0.0, 0.5, 0.8), n_train=200, **TRAINED),
    "datasize": dict(sizes=(100, 250), **TRAINED),
    "mc": dict(n_train=200, ks=(1, 2), repeats=1, **TRAINED),
}


def _make_tiny(monkeypatch):
    for name, config in TINY.items():
        monkeypatch.setitem(experiments.EXPERIMENTS, name,
                            dataclasses.replace(experiments.EXPERIMENTS[name], quick=config))


@pytest.fixture
def tiny_experiments(monkeypatch):
    _make_tiny(monkeypatch)


@pytest.fixture(scope="module")
def tiny_page(tmp_path_factory):
    """A --quick --seeds 2 page of tiny experiments, written once: (path, what the CLI printed)."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    with pytest.MonkeyPatch.context() as monkeypatch:
        _make_tiny(monkeypatch)
        printed = _run_cli(["report", str(path), "--quick", "--no-progress", "--seeds", "2"])
    return path, printed


def _run_cli(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(argv) == 0
    return out.getvalue()


class _Sections(HTMLParser):
    """The page's sections; per section its images (src, alt) and its evidence lines."""

    def __init__(self):
        super().__init__()
        self.claims, self.experiments, self.images = {}, [], {}
        self.evidence, self._section, self._in_li, self._text = {}, None, False, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs["id"]
            if attrs.get("class") == "claim-section":
                self.claims[attrs["id"]] = attrs["data-verdict"]
            elif attrs.get("class") == "experiment":
                self.experiments.append(attrs["id"])
        elif tag == "img":
            self.images.setdefault(self._section, []).append((attrs["src"], attrs.get("alt", "")))
        elif tag == "li" and self._section in self.claims:
            self._in_li, self._text = True, []

    def handle_endtag(self, tag):
        if tag == "li" and self._in_li:
            self.evidence.setdefault(self._section, []).append("".join(self._text).strip())
            self._in_li = False
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._in_li:
            self._text.append(data)


def test_report_cli_writes_one_page(tiny_page):
    path, out = tiny_page
    for claim in report.CLAIMS:
        assert claim.key in out
    assert f"report written to {path}" in out
    text = path.read_text(encoding="utf-8")
    page = _Sections()
    page.feed(text)
    assert list(page.claims) == [c.key for c in report.CLAIMS]
    assert set(page.claims.values()) <= {"held", "held in part", "did not hold"}
    assert page.experiments == [f"experiment-{name}" for name in experiments.EXPERIMENTS]
    assert "quick configuration, seeds [0, 1]" in text and " ± " in text
    if experiments.matplotlib_available():
        # the picture of thinned networks, then one figure of its own per claim
        assert list(page.images) == ["thinned", *page.claims]
        images = [image for section in page.images.values() for image in section]
        assert all(len(section) == 1 for section in page.images.values())
        assert all(src.startswith("data:image/png;base64,") for src, _ in images)
        assert len({src for src, _ in images}) == len(images)
        assert len({alt for _, alt in images}) == len(images)
        assert all(len(alt.split()) >= 12 and "± sd over seeds" in alt for _, alt in images[1:])
    # every claim shows its own evidence: no line of it appears under two claims
    lines = [line for section in page.evidence.values() for line in section]
    assert lines and len(set(lines)) == len(lines)
    assert set(page.evidence) == set(page.claims)
    assert all(" ± " in line for line in page.evidence["bagging"][:3])
    assert "https://" not in text and "http://" not in text


def test_report_without_matplotlib_still_writes_the_page(tiny_experiments, tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "matplotlib_available", lambda: False)
    path = tmp_path / "report.html"
    assert cli.main(["report", str(path), "--quick", "--no-progress"]) == 0
    text = path.read_text(encoding="utf-8")
    assert "<img" not in text and "matplotlib is not installed" in text
    assert "seeds [0] (one seed)" in text


def test_report_cli_rejects_bad_seeds(capsys, tmp_path):
    assert cli.main(["report", str(tmp_path / "r.html"), "--seeds", "0"]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_a_claim_that_fails_is_reported_as_such():
    claim = report.CLAIMS[0]
    result = experiments.run_experiment("scaling", **TINY["scaling"])
    assert report.verdict(claim, {"scaling": result})[0] == "held"
    result.conclusions["each training mean matches its own test output"] = False
    held, checks = report.verdict(claim, {"scaling": result})
    assert held == "held in part" and [c.passed for c in checks] == [True, False]
    result.conclusions = dict.fromkeys(result.conclusions, False)
    assert report.verdict(claim, {"scaling": result})[0] == "did not hold"


def test_a_number_shown_beside_the_checks_does_not_decide_the_verdict():
    claim = report.Claim("k", "t", "s", (), lambda results: [
        report.Check("needed", "1", True), report.Check("shown", "2", None)], "mc")
    assert report.verdict(claim, {})[0] == "held"
    claim = report.Claim("k", "t", "s", (), lambda results: [report.Check("shown", "2", None)], "mc")
    assert report.verdict(claim, {})[0] == "did not hold"


RENDER_TOOL = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "tools", "render_report")
NO_BROWSER = 3  # the tool's exit status when Chromium cannot be found or started


def _render(page, tmp_path):
    """(exit status, stderr, what the tool found) of tools/render_report on `page`."""
    png, found = tmp_path / "page.png", tmp_path / "found.json"
    run = subprocess.run([sys.executable, RENDER_TOOL, str(page), str(png), "--json", str(found)],
                         capture_output=True, text=True, timeout=240)
    if run.returncode == NO_BROWSER:
        pytest.skip(run.stderr.strip())
    return run.returncode, run.stderr, json.loads(found.read_text()), png


def test_the_page_renders_in_chromium_offline_with_a_figure_of_its_own_per_claim(
        tiny_page, tmp_path):
    pytest.importorskip("matplotlib")
    status, errors, found, png = _render(tiny_page[0], tmp_path)
    assert status == 0, errors
    assert found["claims"] == [c.key for c in report.CLAIMS]
    images = found["images"]
    # none broken: every image decoded to a real picture, and says what it shows
    assert all(i["complete"] and i["width"] > 100 and i["height"] > 100 for i in images)
    assert all(i["inline"] and len(i["alt"].split()) >= 12 for i in images)
    # nothing asked from outside the page: the page itself and its inline images
    assert found["requests"][0].startswith("file://")
    assert all(r.startswith(("file:", "data:")) for r in found["requests"])
    # each claim section has exactly one figure, the thinned networks one more, none repeated
    by_section = [i["section"] for i in images]
    assert by_section == ["thinned", *found["claims"]]
    assert len({i["digest"] for i in images}) == len(images)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and found["height"] > 3000


def test_the_render_check_finds_a_broken_image_an_outside_request_and_a_missing_figure(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel=stylesheet href="https://cdn.invalid/x.css"></head>'
        '<body><section class="claim-section" id="a"><img alt="a figure" src="data:image/png;base64,AAAA">'
        '</section><section class="claim-section" id="b"><p>no figure</p></section>'
        '<section id="c"><img alt="twice" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        '<img alt="twice" src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></section></body></html>')
    status, errors, found, _ = _render(page, tmp_path)
    assert status == 1
    assert "broken image in section a" in errors
    assert "outside itself: https://cdn.invalid/x.css" in errors
    assert "claim section b has no figure" in errors
    assert "one image appears 2 times, in sections ['c', 'c']" in errors


@pytest.mark.parametrize("argv, seeds", [([], 3), (["--quick"], 1), (["--seeds", "2"], 2),
                                         (["--quick", "--seeds", "2"], 2)])
def test_report_seeds_default_to_three_and_to_one_when_quick(argv, seeds, monkeypatch, tmp_path, capsys):
    calls = []

    def write_report(path, **kwargs):
        calls.append(kwargs)
        return {}, {"scaling": "held"}

    monkeypatch.setattr(report, "write_report", write_report)
    assert cli.main(["report", str(tmp_path / "r.html"), "--no-progress", *argv]) == 0
    assert [c["seeds"] for c in calls] == [seeds] and calls[0]["quick"] == ("--quick" in argv)
    assert f"{seeds} seed" in capsys.readouterr().out
