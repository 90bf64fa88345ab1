"""Render pages of the built site in headless Chromium: screenshots, and no external request.

    python docs/tools/browser_check.py SITE_DIR OUT_DIR [PAGE ...]

Serves SITE_DIR on 127.0.0.1 (a free port), opens each PAGE (default: the home page and the
config reference) with ``--screenshot`` into OUT_DIR and a NetLog of the browser's network
traffic, then reads the NetLog: every request the page made (its initiator is the site's
origin) must go to the site itself. Chromium's own background requests (update checks, no
initiator) are not the page's and are not counted; with every host name but 127.0.0.1
unresolvable (``--host-resolver-rules``) none of them leaves the machine either. Exits 1 with
one line per problem: a request elsewhere, a screenshot that is missing or blank, or a NetLog
with no request of the page at all (the check would be empty).
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PAGES = ("index.html", "reference/config.html")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,1600",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
MIN_PNG_BYTES = 20_000  # a blank 1280x1600 page compresses to a few kB


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """``site`` over HTTP on 127.0.0.1; yields its origin, ``http://127.0.0.1:PORT``."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def page_requests(netlog: Path, origin: str) -> list[str]:
    """The URLs of the requests the page made: those whose initiator is ``origin``."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start and e.get("params", {}).get("initiator") == origin
    ]


def check_page(chromium: str, origin: str, page: str, out: Path) -> list[str]:
    """Screenshot ``page`` into ``out``; the problems found, one line each."""
    shot = out / (page.removesuffix("index.html").strip("/").replace("/", "-") or "home")
    shot = shot.with_suffix(".png")
    with tempfile.TemporaryDirectory() as tmp:
        netlog = Path(tmp) / "netlog.json"
        done = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={tmp}/profile", f"--log-net-log={netlog}",
             f"--screenshot={shot}", f"{origin}/{page}"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        if not netlog.exists():
            return [f"{page}: chromium wrote no net log (exit {done.returncode}): {done.stderr}"]
        requests = page_requests(netlog, origin)
    problems = [
        f"{page}: the page requested {url}" for url in requests if not url.startswith(origin)
    ]
    if not requests:
        problems.append(f"{page}: the net log holds no request of the page; nothing was checked")
    if not shot.exists() or shot.stat().st_size < MIN_PNG_BYTES:
        problems.append(f"{page}: no screenshot, or a blank one, at {shot}")
    return problems


def check(site: Path, out: Path, pages: Sequence[str] = PAGES) -> list[str]:
    """Every problem of every page; screenshots land in ``out``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return ["chromium not found (Debian: apt-get install chromium)"]
    out.mkdir(parents=True, exist_ok=True)
    with serve(site) as origin:
        return [problem for page in pages for problem in check_page(chromium, origin, page, out)]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    site, out, pages = Path(argv[0]), Path(argv[1]), argv[2:] or PAGES
    problems = check(site, out, pages)
    for line in problems:
        print(f"browser check: {line}", file=sys.stderr)
    if not problems:
        print(
            f"browser check: {len(pages)} pages rendered, no external request; screenshots in {out}"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
