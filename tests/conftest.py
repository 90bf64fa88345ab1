"""Shared fixtures.

Tests that need the real MNIST files are marked ``mnist`` and use the ``mnist_dir`` fixture.
Outside CI they skip when the data is absent; with ``CI`` set they fail, so a CI run can never
silently skip them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own runs root; the data cache is shared per session (fast reloads)."""
    if "MNISTEXP_CACHE_DIR" not in os.environ:
        cache = tmp_path_factory.getbasetemp() / "cache"
        monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(cache))
    monkeypatch.delenv("MNISTEXP_RUNS_DIR", raising=False)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the four real MNIST files, from MNISTEXP_DATA_DIR."""
    value = os.environ.get("MNISTEXP_DATA_DIR")
    path = Path(value) if value else None
    if path is None or not (path / "train-images-idx3-ubyte.gz").exists():
        message = f"real MNIST not found (MNISTEXP_DATA_DIR={value!r})"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the real-data tests")
        pytest.skip(message)
    return path
