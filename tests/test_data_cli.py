"""Tests of ``mnistexp data info|verify|fetch`` through click's CliRunner."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_data import closed_port, isolated, make_tiny, register, server  # noqa: F401

from mnistexp.cli import main
from mnistexp.data import datasets as data

MNIST_FILES = [spec.filename for spec in data.DATASETS["mnist"].files.values()]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["data", *args])


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """Exit code 2, a single ``Error:`` line on stderr containing every fragment, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def tiny_as_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path):  # noqa: F811
    """A synthetic dataset standing in for ``mnist`` (the CLI always uses ``mnist``)."""
    tiny = make_tiny(tmp_path / "src")
    register(monkeypatch, tiny, "mnist")
    return tiny


@pytest.mark.mnist
def test_verify_real_data(mnist_dir: Path) -> None:
    result = invoke("verify", "--data-dir", str(mnist_dir))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "ok  train-images-idx3-ubyte.gz  sha256 ba891046…"
    assert [line.split()[1] for line in lines[:4]] == MNIST_FILES
    assert lines[4:] == ["all 4 files verified"]


@pytest.mark.mnist
def test_verify_corrupt_copy(mnist_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mnist"
    shutil.copytree(mnist_dir, copy)
    bad = copy / "train-labels-idx1-ubyte.gz"
    bad.chmod(0o644)
    raw = bytearray(gzip.decompress(bad.read_bytes()))
    raw[1000] ^= 0x01
    bad.write_bytes(gzip.compress(bytes(raw)))
    result = invoke("verify", "--data-dir", str(copy))
    assert_one_line_error(
        result, f"{bad}: sha256 of decompressed data is", "expected 65a50cbb...", "data fetch"
    )
    assert "ok  train-images-idx3-ubyte.gz" in result.stdout
    assert "train-labels" not in result.stdout


@pytest.mark.mnist
def test_verify_accepts_recompressed_and_uncompressed(mnist_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mnist"
    copy.mkdir()
    for name in MNIST_FILES:
        shutil.copy(mnist_dir / name, copy / name)
    labels = copy / "t10k-labels-idx1-ubyte.gz"
    (copy / "t10k-labels-idx1-ubyte").write_bytes(gzip.decompress(labels.read_bytes()))
    labels.unlink()
    train_labels = copy / "train-labels-idx1-ubyte.gz"
    train_labels.write_bytes(gzip.compress(gzip.decompress(train_labels.read_bytes()), 1))
    result = invoke("verify", "--data-dir", str(copy))
    assert result.exit_code == 0, result.output
    assert result.output.endswith("all 4 files verified\n")


def test_verify_missing_folder(tmp_path: Path, isolated: Path) -> None:  # noqa: F811
    result = invoke("verify", "--data-dir", str(tmp_path / "nowhere"))
    assert_one_line_error(result, "train-images-idx3-ubyte.gz", "not found in", "--data-dir")


def test_info_reports_origin_and_shapes(tiny_as_mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNISTEXP_DATA_DIR", str(tiny_as_mnist.folder))
    result = invoke("info")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"folder  {tiny_as_mnist.folder}  (found via MNISTEXP_DATA_DIR)"
    assert "12 x 28 x 28" in lines[2] and "not verified yet" in lines[2]
    assert invoke("verify").exit_code == 0
    assert "not verified" not in invoke("info").output


def test_info_without_data_is_information_not_an_error(tiny_as_mnist, isolated: Path):  # noqa: F811
    result = invoke("info")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert result.stdout.splitlines() == [
        f"folder  {isolated / 'mnist'}  (looked in the user cache: no --data-dir, "
        "MNISTEXP_DATA_DIR unset; the folder does not exist)",
        f"cache   {isolated}",
        *(f"{spec.filename:28}  missing" for spec in tiny_as_mnist.spec.files.values()),
        "4 of 4 files missing; for a local copy, export MNISTEXP_DATA_DIR=/path/to/mnist (or "
        "pass --data-dir); otherwise run 'mnistexp data fetch'",
    ]
    assert_one_line_error(invoke("verify"), "tiny-train-images.gz", "data fetch")


def test_info_lists_what_a_partial_folder_lacks(tiny_as_mnist, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    first = next(iter(tiny_as_mnist.spec.files.values())).filename
    shutil.copy(tiny_as_mnist.folder / first, partial / first)
    result = invoke("info", "--data-dir", str(partial))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"folder  {partial}  (looked in the folder given by --data-dir)"
    size = (partial / first).stat().st_size
    assert lines[2] == f"{first:28}  {size:>12,} bytes  present"
    assert [line.split()[-1] for line in lines[3:6]] == ["missing"] * 3
    assert lines[6] == (
        "3 of 4 files missing; put the mnist files there (.gz or uncompressed), or drop "
        "--data-dir to use the cache"
    )
    verify = invoke("verify", "--data-dir", str(partial))
    assert_one_line_error(verify, "not found in", f"{partial}, given by --data-dir")


def test_fetch_downloads_and_verifies(
    tiny_as_mnist,
    server: tuple[Path, str],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, url = server
    for spec in tiny_as_mnist.spec.files.values():
        shutil.copy(tiny_as_mnist.folder / spec.filename, root / spec.filename)
    spec = dataclasses.replace(data.DATASETS["mnist"], mirrors=(url,))
    monkeypatch.setitem(data.DATASETS, "mnist", spec)
    dest = tmp_path / "dest"
    result = invoke("fetch", "--dest", str(dest), "--no-progress")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == ["all 4 files verified", f"files are in {dest}"]
    assert len(list(dest.iterdir())) == 4


def test_fetch_offline_is_one_line(
    tiny_as_mnist,
    isolated: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offline = (f"http://127.0.0.1:{closed_port()}/",)
    spec = dataclasses.replace(data.DATASETS["mnist"], mirrors=offline)
    monkeypatch.setitem(data.DATASETS, "mnist", spec)
    result = invoke("fetch", "--no-progress")
    assert_one_line_error(result, "download failed from all 1 mirrors", "--data-dir")
    assert not list((isolated / "mnist").iterdir())


@pytest.mark.parametrize("command", ["info", "verify", "fetch"])
def test_every_command_has_help_and_example(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
    options = [line for line in result.output.splitlines() if line.strip().startswith("--")]
    assert options and all(len(line.split(None, 1)) == 2 for line in options)


def test_cli_module_does_not_import_numpy() -> None:
    code = "import sys, mnistexp.cli.data; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
