"""``compare --report FILE.html``: one self-contained page, checked in a real headless browser.

The browser is Debian's ``chromium`` (``.ci/run`` installs it). Outside CI the browser test
skips when chromium is missing; with ``CI`` set it fails instead, so CI never skips it. The
page itself holds no script: the test loads a copy with a probe script appended, which writes
what the browser made of the page (each image's decoded size, every number cell) into the
DOM that ``--dump-dom`` prints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_compare import MSE, make_run

from mnistexp.analysis.columns import METRICS
from mnistexp.cli import main

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

PROBE = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({
    alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}));
  const cells = [...document.querySelectorAll("td[data-metric]")].map(td => ({
    experiment: td.dataset.experiment, metric: td.dataset.metric, text: td.innerText}));
  const tables = [...document.querySelectorAll("table")].map(t => ({
    id: t.id, width: t.scrollWidth, room: t.parentElement.clientWidth,
    overflow: getComputedStyle(t.parentElement).overflowX,
    page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images, cells, tables, title: document.title});
  document.body.appendChild(out);
});
</script>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """The chromium binary; skips outside CI when it is missing, fails in CI."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium not found (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must check the HTML report in a real browser")
        pytest.skip(message)
    return path


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, dict]:
    """A report of three experiments (two sharing a name) and the JSON of the same runs."""
    root = tmp_path / "runs"
    for seed, (a, b) in enumerate([(0.91, 0.85), (0.92, 0.86), (0.93, 0.88)]):
        make_run(root, "base", seed, a)
        make_run(root, "mse", seed, b, overrides=MSE, shift=0.1 + seed / 100)
        make_run(root, "mse", seed, b + 0.01, overrides=(*MSE, "train.lr=0.05"), shift=0.1)
    args = ["compare", "--runs-dir", str(root), "--baseline", "base"]
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, [*args, "--report", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stderr
    return out, json.loads(result.stdout)


class _Sources(HTMLParser):
    """Every URL-valued attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "data")]


def test_the_page_is_self_contained(page: tuple[Path, dict]) -> None:
    path, data = page
    text = path.read_text(encoding="utf-8")
    parser = _Sources()
    parser.feed(text)
    assert parser.urls and all(u.startswith("data:image/png;base64,") for u in parser.urls)
    assert len(parser.urls) == 5  # reliability (+ after TS), confidence, learning curves, metrics
    assert "script" not in parser.tags and "link" not in parser.tags
    assert not re.search(r"https?://", text)
    assert "mse, lr=0.05" in text and "mse, lr=0.1" in text  # short labels, name first
    assert "Against the baseline ‘base’" in text and "Config differences" in text
    for c in data["comparisons"]:
        assert c["verdict"].replace("<", "&lt;") in text
    assert '<table id="significance">' in text and "Holm p" in text  # a table, not sentences
    assert "<h2>Provenance</h2>" in text and "mnistexp 0." in text
    for exp in data["experiments"]:  # every row's run folders, by name
        assert all(Path(run).name in text for run in exp["runs"])
    # the command as given to main, not the test runner's own sys.argv
    assert "<dt>Command</dt><dd>mnistexp compare " in text and "Shared by every row" in text
    assert "metrics.png: Every metric of the table" in text  # captions say what is shown


def _browse(chromium: str, url: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=180,
        )


def _shown(metric: str, value: float | None) -> str | None:
    m = METRICS[metric]
    return None if value is None else f"{m.shown(value):.{m.digits}f}"


def test_the_page_renders_in_chromium_with_the_numbers_of_the_json(
    chromium: str, page: tuple[Path, dict], tmp_path: Path
) -> None:
    path, data = page
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    dom = _browse(
        chromium,
        probe.as_uri(),
        "--window-size=1280,3000",
        "--virtual-time-budget=10000",
        "--dump-dom",
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert match, dom.stdout[-2000:]
    seen = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(seen["images"]) == 5
    for image in seen["images"]:  # decoded: not a broken image
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
    assert {t["id"] for t in seen["tables"]} >= {"results", "significance", "config"}
    for table in seen["tables"]:  # at 1280 px nothing is clipped: it fits, or it scrolls
        assert table["width"] <= table["room"] or table["overflow"] == "auto", table
        assert table["page"] <= table["view"], table  # the page itself never scrolls sideways
    cells = {(c["experiment"], c["metric"]): c["text"].strip() for c in seen["cells"]}
    experiments = data["experiments"]
    assert len(cells) == len(experiments) * (1 + len(data["metrics"]))
    for exp in experiments:
        assert cells[(exp["name"], "n")] == str(exp["n"])
        for metric in data["metrics"]:
            summary = exp["metrics"][metric]
            mean, std = (_shown(metric, summary[k]) for k in ("mean", "std"))
            assert cells[(exp["name"], metric)] == f"{mean} ± {std}", (exp["name"], metric)

    shot = tmp_path / "page.png"
    rendered = _browse(chromium, path.as_uri(), "--window-size=1280,3000", f"--screenshot={shot}")
    assert rendered.returncode == 0 and shot.exists(), rendered.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 3000)
    assert len(png) > 50_000  # text, tables and five figures, not a blank page
