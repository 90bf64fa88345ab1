"""MkDocs hooks: the files the site takes from the repository rather than from docs/site.

- ``reference/config.md``, the config reference, rendered from the code on every build
  (``config_reference.render``), so it can never describe another version than the one built;
- ``figures/*.png``, the figures the studies write into ``docs/`` (where the README links
  them), copied as they are.

Neither is written into the work tree. The repository root goes first on ``sys.path``, so the
build documents this checkout's mnistexp even where another one is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

import config_reference  # noqa: E402  (found through the path set just above)

FIGURES = REPO / "docs"


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "reference/config.md", content=config_reference.render()))
    for png in sorted(FIGURES.glob("*.png")):
        files.append(File.generated(config, f"figures/{png.name}", abs_src_path=str(png)))
    return files
