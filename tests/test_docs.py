"""The documentation site: the config reference generated from the code, a strict build that
loads nothing from the network, and its pages in a real headless browser.

The build needs the ``docs`` extra (``make docs`` installs it) and the browser Debian's
chromium (``.ci/run`` installs it); outside CI a missing one skips, with ``CI`` set it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

from mnistexp.config.loading import all_keys
from tests.conftest import require_tool

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "docs" / "tools"


def tool(name: str) -> ModuleType:
    """A module of docs/tools, imported from its file."""
    spec = importlib.util.spec_from_file_location(f"docs_tools_{name}", TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- config reference


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return tool("config_reference")


def test_the_config_reference_has_a_row_for_every_key(reference: ModuleType):
    text = reference.render()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", text, re.M)}
    assert set(all_keys()) <= set(rows)
    for key in all_keys():
        _, default, allowed, example, description = rows[key].strip("| ").split(" | ")
        assert description.strip(), f"{key} has no description"
        assert example.strip() and allowed.strip() and default.startswith("`"), key


def test_curated_entries_name_keys_that_exist(reference: ModuleType):
    keys = set(all_keys())
    assert set(reference.DESCRIPTIONS) <= keys
    assert set(reference.EXAMPLES) <= keys
    assert set(reference.EXAMPLES) >= reference.UNCHECKED
    for key, items in reference.EXAMPLES.items():
        assert any(i.startswith(f"{key}=") for i in items), f"the example of {key} omits it"


def test_an_example_that_stops_validating_fails_the_build(
    reference: ModuleType, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(reference.EXAMPLES, "train.lr", ("train.lr=-1",))
    with pytest.raises(SystemExit, match=r"the example of train\.lr is invalid: train\.lr = -1"):
        reference.render()


def test_the_reference_shows_values_the_code_declares(reference: ModuleType):
    text = reference.render()
    beta = next(line for line in text.splitlines() if line.startswith("| `targets.beta` |"))
    assert "`targets.scheme = bootstrap_soft` (default 0.95)" in beta
    assert "`targets.scheme = bootstrap_hard` (default 0.8)" in beta
    scaling = next(line for line in text.splitlines() if line.startswith("| `data.scaling` |"))
    assert "`unit`, `tutorial`, `standardize`, `symmetric`, `raw`" in scaling
    assert "| `focal` | `softmax` |" in text  # which loss takes which outputs


# --------------------------------------------------------------------------- the built site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``mkdocs build --strict`` into a temporary folder."""
    if importlib.util.find_spec("mkdocs") is None:
        message = "mkdocs not installed (pip install -e '.[docs]'; make docs does)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must build the documentation")
        pytest.skip(message)
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


LOADING = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
}
"""Tag -> its attributes that make the browser load a URL by itself."""


class Resources(HTMLParser):
    """The URLs a page loads by itself (scripts, styles, images, frames, media, fonts), apart
    from the links a reader may follow (``<a href>``)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self.anchors = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [values[a] or "" for a in LOADING.get(tag, ()) if a in values]
        self.styles += [values["style"] or ""] if "style" in values else []
        self.anchors += tag == "a"

    def handle_data(self, data: str) -> None:
        if self.lasttag == "style":
            self.styles.append(data)


REMOTE = re.compile(r"^\s*(https?:)?//", re.I)
CSS_REMOTE = re.compile(r"(@import\s+|url\(\s*)['\"]?(https?:)?//", re.I)


@pytest.mark.slow  # the site fixture builds the whole site
def test_the_built_site_loads_nothing_from_elsewhere(site: Path):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        parser = Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        remote = [u for u in parser.urls for part in u.split(",") if REMOTE.match(part)]
        assert not remote, f"{page.relative_to(site)} loads {remote}"
        assert not [s for s in parser.styles if CSS_REMOTE.search(s)], page
    for sheet in site.rglob("*.css"):
        assert not CSS_REMOTE.search(sheet.read_text(encoding="utf-8")), sheet
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in home and "fonts.gstatic.com" not in home


@pytest.mark.slow
def test_the_site_has_the_generated_pages_and_the_study_files(site: Path):
    config = (site / "reference" / "config.html").read_text(encoding="utf-8")
    for key in all_keys():
        assert f"<code>{key}</code>" in config, key
    figures = {p.name for p in (REPO / "docs").glob("*.png")}
    assert figures and figures <= {p.name for p in (site / "figures").iterdir()}
    study = (site / "studies" / "01-tutorial.html").read_text(encoding="utf-8")
    first_row = (REPO / "docs" / "studies" / "tutorial.md").read_text().splitlines()[2]
    assert first_row.split(" | ")[1].strip() in study  # the table is included, not linked
    assert 'src="../figures/tutorial_reliability.png"' in study
    api = (site / "reference" / "api.html").read_text(encoding="utf-8")
    assert "mnistexp.api.compare" in api and ":func:" not in api  # roles shown as code


@pytest.mark.slow
def test_pages_render_in_a_browser_without_external_requests(site: Path, tmp_path: Path):
    require_tool("chromium", "the documentation is checked in a real browser")
    problems = tool("browser_check").check(site, tmp_path)
    assert problems == []
    assert {p.name for p in tmp_path.iterdir()} == {"home.png", "reference-config.png"}


def test_the_browser_check_sees_a_request_elsewhere(tmp_path: Path):
    """The net log reader: only the page's own requests count, and one elsewhere is found."""
    check = tool("browser_check")
    origin = "http://127.0.0.1:8000"
    events = [
        ("URL_REQUEST_START_JOB", origin, f"{origin}/assets/main.css"),
        ("URL_REQUEST_START_JOB", origin, "https://fonts.googleapis.com/css?family=Roboto"),
        ("URL_REQUEST_START_JOB", "not an origin", "https://update.example/check"),
        ("CORS_REQUEST", origin, "https://elsewhere.example/x"),
    ]
    types = {"URL_REQUEST_START_JOB": 1, "CORS_REQUEST": 2}
    log = {
        "constants": {"logEventTypes": types},
        "events": [
            {"type": types[kind], "params": {"initiator": who, "url": url}}
            for kind, who, url in events
        ],
    }
    netlog = tmp_path / "netlog.json"
    netlog.write_text(json.dumps(log))
    assert check.page_requests(netlog, origin) == [
        f"{origin}/assets/main.css",
        "https://fonts.googleapis.com/css?family=Roboto",
    ]
