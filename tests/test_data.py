"""Tests of mnistexp.data.datasets: IDX format, resolution order, downloads, verification, caching.

Downloads are served by a local ``http.server`` on 127.0.0.1; nothing touches the network.
Synthetic datasets are registered under their own names with ``monkeypatch.setitem``.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mnistexp.core.errors import DataError
from mnistexp.data import datasets as data

SIZES = {"train": 12, "test": 5}


# --------------------------------------------------------------------------- helpers


@dataclass
class Tiny:
    """A synthetic dataset in ``folder``, registered as ``name``."""

    name: str
    folder: Path
    spec: data.DatasetSpec
    arrays: dict[str, np.ndarray]


def tiny_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Role -> array: images (n, 28, 28) uint8, labels (n,) uint8 in 0..9."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in SIZES.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 10, n, dtype=np.uint8)
    return arrays


def make_tiny(folder: Path, name: str = "tiny", mirrors: tuple[str, ...] = (), arrays=None) -> Tiny:
    """Write a synthetic dataset as gzip IDX files into ``folder`` and build its spec."""
    arrays = tiny_arrays() if arrays is None else arrays
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for role, array in arrays.items():
        filename = f"{name}-{role.replace('_', '-')}.gz"
        data.write_idx(folder / filename, array)
        raw = gzip.decompress((folder / filename).read_bytes())
        md5, sha256 = hashlib.md5(raw).hexdigest(), hashlib.sha256(raw).hexdigest()
        files[role] = data.FileSpec(filename, md5, sha256, len(raw))
    return Tiny(name, folder, data.DatasetSpec(name, files, mirrors), arrays)


def register(monkeypatch: pytest.MonkeyPatch, tiny: Tiny, name: str | None = None) -> None:
    """Put ``tiny.spec`` into the registry (under ``name``, default its own) for this test."""
    name = name or tiny.name
    monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(tiny.spec, name=name))


def assert_one_line(exc: pytest.ExceptionInfo[DataError], *fragments: str) -> None:
    """The DataError message is one line and contains every fragment."""
    message = str(exc.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server on 127.0.0.1 in a thread: (root folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache root for this test, no MNISTEXP_DATA_DIR, no proxies."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(cache))
    for var in ("MNISTEXP_DATA_DIR", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return cache


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path) -> Tiny:
    """A synthetic dataset in ``tmp_path/src`` registered as ``tiny``."""
    made = make_tiny(tmp_path / "src")
    register(monkeypatch, made)
    return made


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def visible_files(folder: Path) -> list[str]:
    """Every file name in ``folder`` (including hidden temp files), sorted."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- IDX format


@pytest.mark.parametrize("suffix", [".gz", ""], ids=["gzip", "raw"])
@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28), id="images"),
        pytest.param(np.array([0, 9, 3, 7], dtype=np.uint8), id="labels"),
        pytest.param(np.arange(-6, 6, dtype=np.int16).reshape(3, 4), id="int16"),
        pytest.param(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 2, 2), id="float32"),
        pytest.param(np.zeros((0, 28, 28), dtype=np.uint8), id="empty"),
    ],
)
def test_idx_round_trip(tmp_path: Path, array: np.ndarray, suffix: str) -> None:
    path = data.write_idx(tmp_path / f"a.idx{suffix}", array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    back = data.read_idx(path)
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert not back.flags.writeable


def test_idx_header_is_big_endian(tmp_path: Path) -> None:
    path = data.write_idx(tmp_path / "a.idx", np.zeros((2, 3), dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(6)


def test_gzip_is_detected_by_magic_not_extension(tmp_path: Path) -> None:
    labels = np.array([1, 2, 3], dtype=np.uint8)
    path = data.write_idx(tmp_path / "labels.idx", labels, compress=True)
    np.testing.assert_array_equal(data.read_idx(path), labels)


def _idx(payload: bytes, code: int = 8, dims: tuple[int, ...] = (4,)) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload


def _bad_gzip_crc() -> bytes:
    blob = bytearray(gzip.compress(_idx(bytes(4))))
    blob[-8] ^= 0xFF  # CRC32 of the trailer
    return bytes(blob)


CORRUPTIONS = [
    pytest.param("a.idx", b"\0\0", "too short for an IDX header", id="too-short"),
    pytest.param("a.idx", b"\x01\x00\x08\x01" + bytes(8), "not an IDX file", id="magic"),
    pytest.param("a.idx", _idx(bytes(4), code=0x07), "unsupported IDX data type 0x07", id="dtype"),
    pytest.param("a.idx", _idx(b"", dims=()), "dimension count 0", id="rank-0"),
    pytest.param("a.idx", _idx(b"", dims=(1,) * 5), "dimension count 5", id="rank-5"),
    pytest.param("a.idx", _idx(b"")[:6], "truncated header", id="truncated-header"),
    pytest.param("a.idx", _idx(bytes(3)), "truncated: 3 data bytes, expected 4", id="truncated"),
    pytest.param("a.idx", _idx(bytes(5)), "1 trailing bytes", id="trailing"),
    pytest.param("a.idx.gz", _idx(bytes(4)), "named .gz but is not gzip data", id="not-gzip"),
    pytest.param("a.gz", gzip.compress(_idx(bytes(4)))[:-6], "bad gzip stream", id="gz-eof"),
    pytest.param("a.gz", _bad_gzip_crc(), "bad gzip stream", id="gz-crc"),
    pytest.param("a.gz", gzip.compress(_idx(bytes(9))), "5 trailing bytes", id="gz-trailing"),
]


@pytest.mark.parametrize(("filename", "blob", "problem"), CORRUPTIONS)
def test_read_idx_rejects_corruption(tmp_path: Path, filename: str, blob: bytes, problem: str):
    path = tmp_path / filename
    path.write_bytes(blob)
    with pytest.raises(DataError) as exc:
        data.read_idx(path)
    assert_one_line(exc, f"{path}: ", problem, "delete it and run 'mnistexp data fetch")


def test_read_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        data.read_idx(tmp_path / "nope.gz")
    assert_one_line(exc, "nope.gz: cannot read")


def test_write_idx_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no IDX type code"):
        data.write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.uint16))


# --------------------------------------------------------------------------- resolution


def test_cache_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_root() == tmp_path / "explicit"
    monkeypatch.delenv("MNISTEXP_CACHE_DIR")
    assert data.cache_root() == tmp_path / "xdg" / "mnistexp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_root() == tmp_path / "home" / ".cache" / "mnistexp"


def test_resolution_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path, server: tuple[Path, str]
) -> None:
    root, url = server
    option = make_tiny(tmp_path / "option")
    env = make_tiny(tmp_path / "env")
    make_tiny(root)
    register(monkeypatch, make_tiny(tmp_path / "spec", mirrors=(url,)))
    monkeypatch.setenv("MNISTEXP_DATA_DIR", str(env.folder))

    assert data.find("tiny", option.folder) == data.DataSource(option.folder, "option")
    assert data.find("tiny") == data.DataSource(env.folder, "env")
    monkeypatch.delenv("MNISTEXP_DATA_DIR")
    assert data.find("tiny", progress=False) == data.DataSource(isolated / "tiny", "download")
    assert data.find("tiny") == data.DataSource(isolated / "tiny", "cache")
    assert data.locate("tiny") == isolated / "tiny"


@pytest.mark.parametrize("where", ["option", "env"])
def test_given_folder_without_files_does_not_fall_through(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    shutil.copytree(tiny.folder, data.cache_root() / "tiny")  # in the cache, yet not used
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / tiny.spec.files["test_labels"].filename).write_bytes(b"")
    given = str(tmp_path / "empty")
    if where == "env":
        monkeypatch.setenv("MNISTEXP_DATA_DIR", given)
    with pytest.raises(DataError) as exc:
        data.locate("tiny", given if where == "option" else None)
    label = "--data-dir" if where == "option" else "MNISTEXP_DATA_DIR"
    assert_one_line(exc, "tiny-train-images.gz", f"not found in {given}, given by {label}")
    assert "tiny-test-labels.gz" not in str(exc.value)


def test_missing_folder_says_so(tiny: Tiny, tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        data.locate("tiny", tmp_path / "nowhere")
    assert_one_line(exc, "tiny-train-images.gz", "(the folder does not exist)")


def test_no_download_when_disabled(tiny: Tiny, isolated: Path) -> None:
    with pytest.raises(DataError) as exc:
        data.locate("tiny", download=False)
    assert_one_line(exc, "tiny-train-images.gz", f"not found in the cache {isolated / 'tiny'}")


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'nope'; known datasets: .*mnist"):
        data.load("nope")


def test_uncompressed_names_are_accepted(tiny: Tiny, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for role, spec in tiny.spec.files.items():
        data.write_idx(plain / spec.filename.removesuffix(".gz"), tiny.arrays[role])
    loaded = data.load("tiny", plain)
    np.testing.assert_array_equal(loaded.test_labels, tiny.arrays["test_labels"])
    assert all(report.ok for report in data.verify("tiny", plain))


# --------------------------------------------------------------------------- downloads


def test_download_tries_next_mirror_after_404(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path, server: tuple[Path, str]
) -> None:
    root, url = server
    served = make_tiny(root / "good")
    mirrors = (f"{url}/missing/", f"{url}/good/")
    register(monkeypatch, make_tiny(tmp_path / "spec", mirrors=mirrors))
    loaded = data.load("tiny", progress=False)
    assert loaded.source == isolated / "tiny"
    for role, array in served.arrays.items():
        np.testing.assert_array_equal(getattr(loaded, role).reshape(array.shape), array)
    assert visible_files(isolated / "tiny") == sorted(
        spec.filename for spec in served.spec.files.values()
    )


def test_all_mirrors_failing_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path, server: tuple[Path, str]
) -> None:
    _, url = server
    mirrors = (f"{url}/missing/", f"http://127.0.0.1:{closed_port()}/")
    register(monkeypatch, make_tiny(tmp_path / "spec", mirrors=mirrors))
    with pytest.raises(DataError) as exc:
        data.load("tiny", progress=False)
    assert_one_line(
        exc,
        "tiny-train-images.gz: download failed from all 2 mirrors",
        "HTTP 404",
        "--data-dir",
        "MNISTEXP_DATA_DIR",
    )
    assert visible_files(isolated / "tiny") == []


def test_checksum_mismatch_on_download_keeps_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path, server: tuple[Path, str]
) -> None:
    root, url = server
    make_tiny(root, arrays=tiny_arrays(seed=1))  # same names, other content
    register(monkeypatch, make_tiny(tmp_path / "spec", mirrors=(url,)))
    with pytest.raises(DataError) as exc:
        data.fetch("tiny", progress=False)
    assert_one_line(exc, "tiny-train-images.gz", "all 1 mirrors", "sha256 of decompressed data")
    assert visible_files(isolated / "tiny") == []


def test_download_rejects_html_served_as_gz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path, server: tuple[Path, str]
) -> None:
    root, url = server
    tiny = make_tiny(tmp_path / "spec", mirrors=(url,))
    for spec in tiny.spec.files.values():
        (root / spec.filename).write_text("<html>captive portal</html>")
    register(monkeypatch, tiny)
    with pytest.raises(DataError) as exc:
        data.fetch("tiny", progress=False)
    assert_one_line(exc, "not gzip data")
    assert visible_files(isolated / "tiny") == []


def test_fetch_into_dest_keeps_existing_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path, server: tuple[Path, str]
) -> None:
    root, url = server
    served = make_tiny(root)
    register(monkeypatch, make_tiny(tmp_path / "spec", mirrors=(url,)))
    dest = tmp_path / "dest"
    dest.mkdir()
    keep = dest / "tiny-test-labels"  # an uncompressed copy already there
    data.write_idx(keep, served.arrays["test_labels"])
    assert data.fetch("tiny", dest, progress=False) == dest
    assert "tiny-test-labels.gz" not in visible_files(dest)
    assert all(report.ok for report in data.verify("tiny", dest))


def test_downloads_get_the_umask_not_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path, server: tuple[Path, str]
) -> None:
    import os

    root, url = server
    make_tiny(root)
    register(monkeypatch, make_tiny(tmp_path / "spec", mirrors=(url,)))
    dest = tmp_path / "dest"
    dest.mkdir()
    old = os.umask(0o002)
    try:
        data.fetch("tiny", dest, progress=False)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in dest.iterdir()}
    assert len(modes) == 4 and set(modes.values()) == {0o664}, modes


def test_unwritable_cache_on_download(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(DataError) as exc:
        data.load("tiny", progress=False)
    assert_one_line(exc, f"{blocker / 'cache' / 'tiny'}: cannot create the data folder")


# --------------------------------------------------------------------------- load and verify


def test_load_shapes_and_checksums(tiny: Tiny) -> None:
    loaded = data.load("tiny", tiny.folder)
    assert loaded.name == "tiny"
    assert loaded.source == tiny.folder
    assert loaded.train_images.shape == (SIZES["train"], 784)
    assert loaded.test_images.shape == (SIZES["test"], 784)
    assert loaded.train_labels.shape == (SIZES["train"],)
    assert loaded.train_images.dtype == loaded.test_labels.dtype == np.uint8
    np.testing.assert_array_equal(
        loaded.train_images.reshape(-1, 28, 28), tiny.arrays["train_images"]
    )
    assert loaded.checksums == {s.filename: s.raw_sha256 for s in tiny.spec.files.values()}
    assert not loaded.train_images.flags.writeable


def test_second_load_uses_decoded_cache(
    tiny: Tiny, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = data.load("tiny", tiny.folder)
    assert len(list((isolated / "decoded").glob("*.npy"))) == 4

    def fail(path: Path) -> bytes:
        raise AssertionError(f"decompressed {path} again")

    monkeypatch.setattr(data, "_read_raw", fail)
    second = data.load("tiny", tiny.folder)
    np.testing.assert_array_equal(second.train_images, first.train_images)
    np.testing.assert_array_equal(second.test_labels, first.test_labels)
    assert not second.train_images.flags.writeable


def test_changed_file_is_verified_again(tiny: Tiny) -> None:
    data.load("tiny", tiny.folder)
    path = tiny.folder / tiny.spec.files["train_labels"].filename
    data.write_idx(path, (tiny.arrays["train_labels"] + 1) % 10)
    with pytest.raises(DataError) as exc:
        data.load("tiny", tiny.folder)
    assert_one_line(exc, f"{path}: sha256 of decompressed data is", "the file is corrupt")


def test_unreadable_decoded_cache_entry_is_ignored(tiny: Tiny, isolated: Path) -> None:
    data.load("tiny", tiny.folder)
    for entry in (isolated / "decoded").glob("*.npy"):
        entry.write_bytes(b"garbage")
    loaded = data.load("tiny", tiny.folder)
    np.testing.assert_array_equal(loaded.test_labels, tiny.arrays["test_labels"])


def _replace_cache_entries(decoded: Path) -> None:
    """Each cached array replaced by a valid array of the same shape and another content."""
    for entry in decoded.glob("*.npy"):
        array = np.load(entry)
        np.save(entry, ((array.astype(np.int64) + 1) % 10).astype(array.dtype))


def test_a_replaced_cache_entry_is_caught_and_rebuilt(tiny: Tiny, isolated: Path) -> None:
    """A cache file swapped for a valid array with other numbers is never used: a run would
    complete with wrong numbers while env.json records the canonical checksum."""
    data.load("tiny", tiny.folder)
    _replace_cache_entries(isolated / "decoded")
    _, files = data.describe("tiny", tiny.folder)
    assert not any(f.verified for f in files)  # `data info` no longer says "verified"
    loaded = data.load("tiny", tiny.folder)
    for role, array in tiny.arrays.items():
        expected = array.reshape(len(array), -1) if array.ndim == 3 else array
        np.testing.assert_array_equal(getattr(loaded, role), expected)
    assert all(f.verified for f in data.describe("tiny", tiny.folder)[1])  # rebuilt


@pytest.mark.parametrize("damage", ["seal-missing", "seal-garbage", "seal-other-source"])
def test_a_cache_entry_without_a_matching_seal_is_rebuilt(
    tiny: Tiny, isolated: Path, damage: str
) -> None:
    data.load("tiny", tiny.folder)
    for seal in (isolated / "decoded").glob("*.json"):
        if damage == "seal-missing":
            seal.unlink()
        elif damage == "seal-garbage":
            seal.write_text("{")
        else:
            seal.write_text(seal.read_text().replace('"source_sha256": "', '"source_sha256": "0'))
    _replace_cache_entries(isolated / "decoded")
    loaded = data.load("tiny", tiny.folder)
    np.testing.assert_array_equal(loaded.test_labels, tiny.arrays["test_labels"])


def test_second_load_of_real_mnist_reads_the_verified_cache(mnist_dir: Path, tmp_path: Path):
    """A second load in a new process takes the sealed cache as it is: nothing is decoded or
    written again, and the arrays are the same. (Its speed, under 0.05 s, is measured by
    benchmarks/data_load.py: a wall-clock bound in a test flakes on a busy machine.)"""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MNISTEXP_CACHE_DIR": str(tmp_path / "cache")}
    script = (
        "import hashlib; from mnistexp import data; "
        f"d = data.load('mnist', {str(mnist_dir)!r}); "
        "print(hashlib.sha256(d.train_images.tobytes() + d.test_labels.tobytes()).hexdigest())"
    )

    def load() -> str:
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, check=True)  # fmt: skip
        return done.stdout.strip()

    first = load()
    cache = sorted((tmp_path / "cache").rglob("*"))
    stamps = {p: p.stat().st_mtime_ns for p in cache if p.is_file()}
    assert any(p.suffix == ".npy" for p in stamps) and any(p.suffix == ".json" for p in stamps)
    assert load() == first
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing rebuilt or rewritten
    assert sorted((tmp_path / "cache").rglob("*")) == cache


def _gzip_bomb(size: int) -> bytes:
    """A gzip stream: an IDX header of 12 labels, then ``size`` zero bytes (~1000x smaller)."""
    import zlib

    header = bytes([0, 0, 8, 1]) + (12).to_bytes(4, "big")
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(header)]
    parts += [compressor.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + compressor.flush()


def test_a_local_gzip_bomb_stops_at_the_expected_size(tiny: Tiny) -> None:
    """A 256 MiB gzip bomb in a data folder is refused after reading its expected size, never
    decompressed whole: peak memory stays far below the bomb's size."""
    import tracemalloc

    path = tiny.folder / tiny.spec.files["train_labels"].filename
    path.write_bytes(_gzip_bomb(256 << 20))
    expected = tiny.spec.files["train_labels"].raw_bytes
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as exc:
            data.load("tiny", tiny.folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_one_line(exc, str(path), f"decompresses to more than {expected} bytes")
    assert peak < 16 << 20, peak
    with pytest.raises(DataError) as exc:  # read_idx without a spec stops at the header's size
        data.read_idx(path)
    assert "decompresses to more than" in str(exc.value)


def test_the_decoded_cache_gets_the_umask_not_0600(tiny: Tiny, isolated: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        data.load("tiny", tiny.folder)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (isolated / "decoded").iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_unwritable_decoded_cache_still_loads(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(blocker / "cache"))
    for _ in range(2):
        loaded = data.load("tiny", tiny.folder)
        np.testing.assert_array_equal(loaded.test_labels, tiny.arrays["test_labels"])


@pytest.mark.parametrize(
    ("role", "array", "problem"),
    [
        pytest.param(
            "train_labels", np.full(SIZES["train"], 10, np.uint8), "label 10 is not", id="label"
        ),
        pytest.param(
            "train_labels", np.zeros(SIZES["train"] - 1, np.uint8), "11 labels for 12", id="count"
        ),
        pytest.param(
            "test_images", np.zeros((SIZES["test"], 28, 27), np.uint8), "(5, 28, 27)", id="shape"
        ),
        pytest.param(
            "test_images", np.zeros((SIZES["test"], 784), np.uint8), "expected uint8", id="rank"
        ),
    ],
)
def test_load_rejects_bad_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path, role, array, problem
) -> None:
    arrays = tiny_arrays() | {role: array}
    register(monkeypatch, make_tiny(tmp_path / "src", arrays=arrays))
    with pytest.raises(DataError) as exc:
        data.load("tiny", tmp_path / "src")
    assert_one_line(exc, f"tiny-{role.replace('_', '-')}.gz: ", problem)


def test_verify_reports_each_file(tiny: Tiny) -> None:
    bad = tiny.folder / tiny.spec.files["test_images"].filename
    raw = bytearray(gzip.decompress(bad.read_bytes()))
    raw[-1] ^= 0x01
    bad.write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    reports = data.verify("tiny", tiny.folder)
    assert [r.file for r in reports] == [s.filename for s in tiny.spec.files.values()]
    assert [r.ok for r in reports] == [True, True, False, True]
    assert reports[0].sha256 == tiny.spec.files["train_images"].raw_sha256
    assert reports[2].sha256 == hashlib.sha256(bytes(raw)).hexdigest()
    assert reports[2].message.startswith(f"{bad}: sha256 of decompressed data is ")


def test_recompressed_file_verifies(tiny: Tiny) -> None:
    path = tiny.folder / tiny.spec.files["train_images"].filename
    original = path.read_bytes()
    path.write_bytes(gzip.compress(gzip.decompress(original), compresslevel=1, mtime=123))
    assert path.read_bytes() != original
    assert all(report.ok for report in data.verify("tiny", tiny.folder))


def test_describe_reads_headers(tiny: Tiny) -> None:
    source, files = data.describe("tiny", tiny.folder)
    assert source == data.DataSource(tiny.folder, "option")
    assert [f.shape for f in files] == [(12, 28, 28), (12,), (5, 28, 28), (5,)]
    assert not any(f.verified for f in files)
    data.verify("tiny", tiny.folder)
    assert all(f.verified for f in data.describe("tiny", tiny.folder)[1])


# --------------------------------------------------------------------------- real MNIST


@pytest.mark.mnist
def test_real_mnist(mnist_dir: Path) -> None:
    mnist = data.load("mnist", mnist_dir, progress=False)
    assert mnist.train_images.shape == (60000, 784)
    assert mnist.test_images.shape == (10000, 784)
    assert mnist.train_labels.shape == (60000,)
    assert mnist.test_labels.shape == (10000,)
    assert mnist.train_images.dtype == np.uint8
    assert int(mnist.train_images.max()) == 255
    assert np.bincount(mnist.train_labels, minlength=10)[1] == 6742
    assert np.bincount(mnist.test_labels, minlength=10)[1] == 1135
    assert np.bincount(mnist.train_labels, minlength=10).sum() == 60000
    assert mnist.checksums["train-images-idx3-ubyte.gz"].startswith("ba891046")
    reports = data.verify("mnist", mnist_dir)
    assert [r.ok for r in reports] == [True] * 4
