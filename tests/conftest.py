"""Shared fixtures.

Tests that need the real MNIST files are marked ``mnist`` and use the ``mnist_dir`` fixture.
Outside CI they skip when the data is absent; with ``CI`` set they fail, so a CI run can never
silently skip them.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
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


def require_tool(name: str, why: str) -> str:
    """The path of the program ``name`` on PATH. Outside CI a missing program skips the test
    with a reason; with ``CI`` set it fails, so CI never silently skips a real-engine test."""
    import shutil

    path = shutil.which(name)
    if path is None:
        message = f"{name} not found on PATH ({why})"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the real-engine tests (.ci/run sets them up)")
        pytest.skip(message)
    return path


def make_tiny_dataset(folder: Path, n_train: int = 600, n_test: int = 200, seed: int = 0):
    """Write a small, learnable MNIST-format dataset into ``folder`` and return its spec.

    Each class k lights up its own 3-row band of the 28x28 image (plus noise), so a small MLP
    learns it in one or two epochs. Files are plain (uncompressed) IDX.
    """
    import hashlib

    import numpy as np

    from mnistexp.data import datasets as data

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for role, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for k in range(10):
            images[labels == k, 2 + 2 * k : 5 + 2 * k, 4:24] = 230
        for kind, array in (("images", images), ("labels", labels)):
            spec = data.DATASETS["mnist"].files[f"{role}_{kind}"]
            path = folder / spec.filename.removesuffix(".gz")
            data.write_idx(path, array, compress=False)
            raw = path.read_bytes()
            files[f"{role}_{kind}"] = data.FileSpec(
                spec.filename,
                hashlib.md5(raw).hexdigest(),
                hashlib.sha256(raw).hexdigest(),
                len(raw),
            )
    return data.DatasetSpec("tiny", files, mirrors=())


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("tiny-mnist")
    return folder, make_tiny_dataset(folder)


@pytest.fixture
def tiny(tiny_data_dir, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Register the synthetic dataset as ``tiny`` and return its folder.

    Configs select it with ``data.dataset=tiny`` and ``--data-dir <folder>``.
    """
    from mnistexp.data import datasets as data

    folder, spec = tiny_data_dir
    monkeypatch.setitem(data.DATASETS, "tiny", spec)
    return folder


TINY = [
    "data.dataset=tiny",
    "data.validation=100",
    "model.hidden=[16]",
    "train.epochs=2",
    "train.batch_size=20",
    "eval.bins=10",
]
"""--set overrides for a run on the tiny dataset that takes well under a second."""


def tiny_sets(tiny: Path) -> list[str]:
    """``--set`` options for a CLI run on the tiny dataset in folder ``tiny``."""
    return [w for item in [*TINY, f"data.dir={tiny}"] for w in ("--set", item)]


def run_states(root: Path) -> dict[str, str]:
    """Folder name -> state (as :func:`mnistexp.store.runs.read_status` reads it) under ``root``."""
    from mnistexp.store import runs

    return {p.name: runs.read_status(p)["state"] for p in runs.iter_run_folders(root)}


LAUNCHER = (
    "import pickle, sys\n"
    "from mnistexp import data\n"
    "data.DATASETS['tiny'] = pickle.load(open(sys.argv.pop(1), 'rb'))\n"
    "from mnistexp.cli import main\n"
    "main(sys.argv[1:], prog_name='mnistexp')\n"
)


@pytest.fixture
def launch(tiny: Path, tmp_path: Path) -> Callable[..., subprocess.Popen]:
    """Start ``mnistexp <args>`` as a real process that knows the tiny dataset.

    Subprocesses cannot see a monkeypatched dataset registry, so they start through a
    launcher that registers the tiny dataset (pickled spec) before calling the CLI.
    """
    from mnistexp.data import datasets as data

    spec_file = tmp_path / "tiny.pickle"
    spec_file.write_bytes(pickle.dumps(data.DATASETS["tiny"]))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    env["PYTHONFAULTHANDLER"] = "1"  # a test that finds it hanging can ask for its stacks

    def start(*args: str, prelude: str = "", **kwargs) -> subprocess.Popen:
        """``prelude``: Python run before the CLI starts (a test's hook into the process)."""
        return subprocess.Popen(
            [sys.executable, "-c", prelude + LAUNCHER, str(spec_file), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            **kwargs,
        )

    return start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts real mnistexp processes (the ``launch`` fixture) is ``slow``: each
    process pays Python's and numpy's start-up, and most wait on signals or leases. ``make
    test-fast`` leaves them out; ``make test`` (and CI) runs them."""
    for item in items:
        if "launch" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
