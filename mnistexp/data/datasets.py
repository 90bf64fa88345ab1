"""MNIST-style datasets: IDX files, a dataset registry, finding, downloading, verifying, caching.

The four files of a dataset are looked for, in order, in an explicit ``data_dir``, in
``$MNISTEXP_DATA_DIR``, in the user cache (``<cache root>/<dataset>/``), and are otherwise
downloaded into that cache from the dataset's mirrors. A download goes to a temporary file in
the same folder and is renamed into place only after the sha256 of its *decompressed* bytes
matches the registry, so a failed or corrupt download never leaves a file behind.

Decoded arrays are cached as ``.npy`` files under ``<cache root>/decoded/``, keyed by the source
file's resolved path, size and mtime. The first load of a file verifies its checksum; later
loads trust that key and neither decompress nor hash again. An unwritable cache only makes
loading slower.

This is the only module that touches the data cache. Every problem with a data file raises a
one-line :class:`~mnistexp.core.errors.DataError` that names the file and says what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from http.client import HTTPException, HTTPMessage
from pathlib import Path
from typing import IO

import numpy as np

from mnistexp import __version__
from mnistexp.core import atomic
from mnistexp.core.errors import DataError
from mnistexp.core.paths import check_names, check_output_folder
from mnistexp.data.idx import (
    GZIP_MAGIC,
    decompress,
    parse_header,
    parse_idx,
    read_bounded,
    write_idx,
)

__all__ = [
    "DATASETS",
    "ROLES",
    "DataSource",
    "Dataset",
    "DatasetSpec",
    "FileInfo",
    "FileReport",
    "FileSpec",
    "cache_root",
    "dataset_spec",
    "describe",
    "fetch",
    "find",
    "load",
    "locate",
    "read_idx",
    "verify",
    "write_idx",
]

log = logging.getLogger(__name__)

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
DATA_DIR_ENV = "MNISTEXP_DATA_DIR"
CACHE_DIR_ENV = "MNISTEXP_CACHE_DIR"

_CACHE_FORMAT = 1  # bump when the layout of decoded cache entries changes
_TIMEOUT_S = 30.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SLACK = 1 << 20  # a download may exceed the decompressed size by this much (headers)
_CHUNK = 1 << 16

# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset as its mirrors serve it.

    ``filename`` is the name on the mirror (usually ``*.gz``). The md5, sha256 and size are of
    the *decompressed* bytes, so a copy that was recompressed (or stored uncompressed) verifies.
    """

    filename: str
    raw_md5: str
    raw_sha256: str
    raw_bytes: int

    @property
    def names(self) -> tuple[str, str]:
        """File names accepted in a folder: the mirror's name, then its gzip/plain twin."""
        if self.filename.endswith(".gz"):
            return self.filename, self.filename.removesuffix(".gz")
        return self.filename, self.filename + ".gz"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset in MNIST layout: ``files`` maps each of :data:`ROLES` to its :class:`FileSpec`.

    ``mirrors`` are base URLs tried in order; a file's URL is ``mirror + filename``.
    """

    name: str
    files: dict[str, FileSpec]
    mirrors: tuple[str, ...]


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files={
            "train_images": FileSpec(
                "train-images-idx3-ubyte.gz",
                "6bbc9ace898e44ae57da46a324031adb",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                47040016,
            ),
            "train_labels": FileSpec(
                "train-labels-idx1-ubyte.gz",
                "a25bea736e30d166cdddb491f175f624",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                60008,
            ),
            "test_images": FileSpec(
                "t10k-images-idx3-ubyte.gz",
                "2646ac647ad5339dbf082846283269ea",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                7840016,
            ),
            "test_labels": FileSpec(
                "t10k-labels-idx1-ubyte.gz",
                "27ae3e4e09519cfbb04c329615203637",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                10008,
            ),
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``, looked up at call time (tests add their own)."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise DataError(f"unknown dataset {name!r}; known datasets: {known}") from None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset. Arrays are read-only; rows are samples.

    - ``train_images``: (n_train, 784) uint8, pixels 0..255, each 28x28 image row-major.
    - ``train_labels``: (n_train,) uint8 in 0..9.
    - ``test_images``: (n_test, 784) uint8; ``test_labels``: (n_test,) uint8.
    - ``source``: the folder the files came from.
    - ``checksums``: file name -> sha256 of its decompressed bytes (all verified).
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: Path
    checksums: dict[str, str]


@dataclass(frozen=True)
class DataSource:
    """Where a dataset's files are: ``origin`` is ``option``, ``env``, ``cache`` or ``download``."""

    folder: Path
    origin: str


@dataclass(frozen=True)
class FileReport:
    """The outcome of verifying one file; ``sha256`` is empty when it could not be read."""

    file: str
    path: Path
    ok: bool
    message: str
    sha256: str


@dataclass(frozen=True)
class FileInfo:
    """What ``describe`` knows about one file without decompressing it.

    ``shape`` comes from the IDX header; ``verified`` means a decoded cache entry exists for the
    file's current (path, size, mtime), which is written only after its checksum matched.
    """

    file: str
    path: Path
    size: int
    shape: tuple[int, ...]
    verified: bool


# --------------------------------------------------------------------------- IDX format


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw (detected by magic bytes, not by extension).

    Returns a read-only array of the file's shape and type, e.g. (60000, 28, 28) uint8 for
    the training images or (60000,) uint8 for the labels.
    """
    path = Path(path)
    return _parse_checked(_read_raw(path), path)


def _parse_checked(raw: bytes, path: Path) -> np.ndarray:
    """:func:`_parse_idx` with errors turned into a DataError naming ``path``."""
    try:
        return parse_idx(raw)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}; {_advice(path)}") from None


def _read_raw(path: Path, limit: int | None = None) -> bytes:
    """The decompressed bytes of the file at ``path``, read as a stream that stops past
    ``limit`` bytes (default: the size its IDX header declares), so a gzip bomb in a data
    folder costs no more memory than the real file would."""
    try:
        with path.open("rb") as handle:
            return read_bounded(handle, expect_gzip=path.suffix == ".gz", limit=limit)
    except OSError as exc:
        reason = exc.strerror or exc
        raise DataError(f"{path}: cannot read ({reason}); check the path and permissions") from None
    except ValueError as exc:
        raise DataError(f"{path}: {exc}; {_advice(path)}") from None


def _advice(path: Path) -> str:
    """What to do about a corrupt data file."""
    return f"the file is corrupt: delete it and run 'mnistexp data fetch --dest {path.parent}'"


def _digest_problem(spec: FileSpec, size: int, sha256: str) -> str | None:
    """Why decompressed data of ``size`` bytes and digest ``sha256`` does not match ``spec``."""
    if size != spec.raw_bytes:
        return f"decompressed size is {size} bytes, expected {spec.raw_bytes}"
    if sha256 != spec.raw_sha256:
        return f"sha256 of decompressed data is {sha256[:8]}..., expected {spec.raw_sha256[:8]}..."
    return None


def _check_digest(spec: FileSpec, path: Path, raw: bytes) -> str:
    """Return the sha256 of ``raw``, or raise a DataError if it does not match ``spec``."""
    sha256 = hashlib.sha256(raw).hexdigest()
    problem = _digest_problem(spec, len(raw), sha256)
    if problem is not None:
        raise DataError(f"{path}: {problem}; {_advice(path)}")
    return sha256


# --------------------------------------------------------------------------- locating


def cache_root() -> Path:
    """``$MNISTEXP_CACHE_DIR``, else ``$XDG_CACHE_HOME/mnistexp``, else ``~/.cache/mnistexp``."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return check_names(Path(explicit).expanduser(), CACHE_DIR_ENV)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mnistexp"


def _file_in(folder: Path, spec: FileSpec) -> Path | None:
    """The copy of ``spec`` in ``folder`` (gzip or uncompressed name), if any."""
    for name in spec.names:
        if (folder / name).is_file():
            return folder / name
    return None


def _missing(dataset: DatasetSpec, folder: Path) -> list[str]:
    """Mirror file names of ``dataset`` that have no copy in ``folder``."""
    return [spec.filename for spec in dataset.files.values() if _file_in(folder, spec) is None]


def _paths(dataset: DatasetSpec, folder: Path) -> dict[str, Path]:
    """Role -> path of every file of ``dataset`` in ``folder``; DataError if one is missing."""
    paths = {role: _file_in(folder, spec) for role, spec in dataset.files.items()}
    missing = [dataset.files[role].filename for role, path in paths.items() if path is None]
    if missing:
        raise DataError(f"{', '.join(missing)}: not found in {folder}; run 'mnistexp data fetch'")
    return paths  # type: ignore[return-value]


class MissingFiles(DataError):
    """Files of a dataset missing from the folder where they were looked for: the one-line
    error, and what ``mnistexp data info`` shows instead (``folder``, ``origin`` as in
    :class:`DataSource`, each file's copy or None in ``files``, and ``advice``)."""

    def __init__(
        self, dataset: DatasetSpec, folder: Path, origin: str, where: str, advice: str
    ) -> None:
        self.folder, self.origin, self.advice = folder, origin, advice
        self.files = {spec.filename: _file_in(folder, spec) for spec in dataset.files.values()}
        self.missing = [name for name, path in self.files.items() if path is None]
        super().__init__(f"{', '.join(self.missing)}: not found in {where}; {advice}")

    def __reduce__(self) -> tuple[type, tuple[str]]:
        """A sweep worker's error reaches its parent pickled: as the plain one-line error."""
        return DataError, (str(self),)


def _require_all(dataset: DatasetSpec, folder: Path, where: str, origin: str) -> None:
    """Raise :class:`MissingFiles` if ``folder`` (from ``where``) lacks any file."""
    if _missing(dataset, folder):
        state = "" if folder.is_dir() else " (the folder does not exist)"
        advice = (
            f"put the {dataset.name} files there (.gz or uncompressed), or drop {where} to use "
            "the cache"
        )
        raise MissingFiles(dataset, folder, origin, f"{folder}{state}, given by {where}", advice)


def find(
    name: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    progress: bool = True,
) -> DataSource:
    """Find the folder holding all files of dataset ``name``, downloading them if needed.

    Order: ``data_dir``, then ``$MNISTEXP_DATA_DIR`` (either one, when given, must hold the
    files: no fall-through), then the user cache, then a download into the cache.
    """
    dataset = dataset_spec(name)
    env_dir = os.environ.get(DATA_DIR_ENV) or None
    for origin, where, value in (
        ("option", "--data-dir", data_dir),
        ("env", DATA_DIR_ENV, env_dir),
    ):
        if value is not None:
            folder = check_names(Path(value).expanduser(), where)
            _require_all(dataset, folder, where, origin)
            return DataSource(folder, origin)
    folder = cache_root() / dataset.name
    missing = _missing(dataset, folder)
    if not missing:
        return DataSource(folder, "cache")
    if not download:
        raise MissingFiles(
            dataset,
            folder,
            "cache",
            f"the cache {folder} (no --data-dir, {DATA_DIR_ENV} unset)",
            f"for a local copy, export {DATA_DIR_ENV}=/path/to/mnist (or pass --data-dir); "
            "otherwise run 'mnistexp data fetch'",
        )
    _download_missing(dataset, folder, progress)
    return DataSource(folder, "download")


def locate(
    name: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """The folder holding all files of dataset ``name``; see :func:`find` for the order."""
    return find(name, data_dir, download=download, progress=progress).folder


# --------------------------------------------------------------------------- downloading


def fetch(
    name: str = "mnist", dest: str | os.PathLike[str] | None = None, *, progress: bool = True
) -> Path:
    """Download the files of ``name`` missing from ``dest`` (default: the cache folder).

    Files already in ``dest`` are kept as they are; call :func:`verify` to check them.
    """
    dataset = dataset_spec(name)
    what = "--dest folder" if dest is not None else "data cache folder"
    folder = Path(dest).expanduser() if dest is not None else cache_root() / dataset.name
    if _missing(dataset, check_names(folder, what)):
        check_output_folder(folder, what)
        _download_missing(dataset, folder, progress)
    return folder


def _download_missing(dataset: DatasetSpec, folder: Path, progress: bool) -> None:
    """Download every file of ``dataset`` that has no copy in ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"{folder}: cannot create the data folder ({exc.strerror or exc}); set "
            f"{CACHE_DIR_ENV} to a writable folder, or pass --data-dir"
        ) from None
    for spec in dataset.files.values():
        if _file_in(folder, spec) is None:
            _download_file(spec, dataset.mirrors, folder, progress)


def _download_file(spec: FileSpec, mirrors: tuple[str, ...], folder: Path, progress: bool) -> Path:
    """Try each mirror until one yields data matching ``spec``; rename it into ``folder``."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + spec.filename
        if not _secure(url):
            failures.append(f"{url}: refused, not HTTPS")
            continue
        writer, out = _temp_file(folder / spec.filename)
        try:
            _stream(url, out, spec.filename, progress, limit=spec.raw_bytes + _SLACK)
            problem = _download_problem(spec, writer.tmp)
            if problem is None:
                writer.commit()  # renamed into place only now, verified
                return folder / spec.filename
            failures.append(f"{url}: {problem}")
        except (OSError, HTTPException, ValueError) as exc:
            failures.append(f"{url}: {_reason(exc)}")
        finally:
            writer.abort()  # nothing left behind unless committed
    tried = "; ".join(failures) or "no mirrors are configured"
    raise DataError(
        f"{spec.filename}: download failed from all {len(mirrors)} mirrors ({tried}); check the "
        f"network, or put the files in a folder and pass --data-dir or set {DATA_DIR_ENV}"
    )


def _temp_file(dest: Path) -> tuple[atomic.AtomicFile, IO[bytes]]:
    """The atomic writer of a download to ``dest`` and its temporary file, open."""
    writer = atomic.AtomicFile(dest)
    try:
        return writer, writer.open()
    except OSError as exc:
        raise DataError(
            f"{dest.parent}: cannot write a download there ({exc.strerror or exc}); set "
            f"{CACHE_DIR_ENV} to a writable folder, or pass --dest / --data-dir"
        ) from None


def _secure(url: str) -> bool:
    """HTTPS only; plain HTTP is allowed to this machine's loopback (local test mirrors)."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)


class _HttpsRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to URLs :func:`_secure` accepts (no downgrade to plain HTTP)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not _secure(newurl):
            raise urllib.error.URLError(f"refused a redirect to {newurl}, not HTTPS")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _stream(url: str, out: IO[bytes], label: str, progress: bool, limit: int) -> None:
    """Copy ``url`` into the open file ``out`` with a tqdm bar (shown only if stderr is a
    terminal); ValueError past ``limit`` bytes, so a broken mirror cannot fill the disk."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": f"mnistexp/{__version__}"})
    show = progress and sys.stderr is not None and sys.stderr.isatty()
    opener = urllib.request.build_opener(_HttpsRedirects)
    with opener.open(request, timeout=_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, disable=not show)
        with bar:
            written = 0
            while chunk := response.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise ValueError(f"larger than {limit} bytes; not the expected file")
                out.write(chunk)
                bar.update(len(chunk))
    out.flush()


def _download_problem(spec: FileSpec, tmp: Path) -> str | None:
    """Why the downloaded file ``tmp`` does not match ``spec`` (None if it does)."""
    try:
        raw = decompress(
            tmp.read_bytes(), expect_gzip=spec.filename.endswith(".gz"), limit=spec.raw_bytes
        )
    except ValueError as exc:
        return str(exc)
    return _digest_problem(spec, len(raw), hashlib.sha256(raw).hexdigest())


def _reason(exc: BaseException) -> str:
    """A short one-line reason for a failed download."""
    if isinstance(exc, urllib.error.HTTPError):
        exc.close()  # release the error response's socket
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        text = str(exc.reason)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# --------------------------------------------------------------------------- decoded cache


def _cache_entry(path: Path, spec: FileSpec) -> Path | None:
    """The decoded-cache file for ``path`` as it is now (resolved path, size, mtime)."""
    try:
        stat, resolved = path.stat(), path.resolve()
    except OSError:
        return None
    key = f"{_CACHE_FORMAT}|{resolved}|{stat.st_size}|{stat.st_mtime_ns}|{spec.raw_sha256}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_root() / "decoded" / f"{spec.filename.removesuffix('.gz')}-{digest}.npy"


def _seal_of(entry: Path) -> Path:
    """Where the checksum of a cache entry's decoded bytes is kept: beside it."""
    return entry.with_suffix(".json")


def _read_cached(entry: Path | None, spec: FileSpec) -> np.ndarray | None:
    """The read-only array cached at ``entry`` if it is exactly what was decoded from a file
    matching ``spec``: its seal names ``spec``'s checksum, and the CRC-32 of the array's
    bytes, its shape and dtype match the seal. None otherwise (absent, unreadable, or replaced
    by any other array), and the caller decodes and verifies the source again."""
    if entry is None:
        return None
    try:
        seal = json.loads(_seal_of(entry).read_bytes())
        array = np.load(entry, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if seal != _seal(array, spec):
        log.info("decoded cache %s does not match its seal; decoding the source again", entry)
        return None
    array.flags.writeable = False
    return array


def _seal(array: np.ndarray, spec: FileSpec) -> dict[str, object]:
    """What a cache entry must match: the source's sha256 and the decoded array's shape, dtype
    and CRC-32 (8 ms for the 47 MB training images, a third of a sha256)."""
    return {
        "format": _CACHE_FORMAT,
        "source_sha256": spec.raw_sha256,
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "crc32": zlib.crc32(np.ascontiguousarray(array).data),
    }


def _write_cached(entry: Path | None, array: np.ndarray, spec: FileSpec) -> None:
    """Store ``array`` at ``entry`` with its seal, atomically; a cache that cannot be
    written is skipped (loading is then only slower)."""
    if entry is None:
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic.AtomicFile(entry) as out:
            np.save(out, array, allow_pickle=False)
        atomic.write_file(_seal_of(entry), json.dumps(_seal(array, spec)))
    except OSError as exc:
        log.debug("decoded cache not written to %s: %s", entry, exc)


def _load_file(spec: FileSpec, path: Path) -> np.ndarray:
    """The array in ``path``: from the decoded cache if it verifies, else read (at most the
    expected size), verified against ``spec`` and cached."""
    entry = _cache_entry(path, spec)
    cached = _read_cached(entry, spec)
    if cached is not None:
        return cached
    raw = _read_raw(path, spec.raw_bytes)
    _check_digest(spec, path, raw)
    array = _parse_checked(raw, path)
    _write_cached(entry, array, spec)
    return array


# --------------------------------------------------------------------------- public API


def verify(name: str = "mnist", data_dir: str | os.PathLike[str] | None = None) -> list[FileReport]:
    """Check the decompressed size and sha256 of every file of ``name`` (never downloads).

    Files that pass are also decoded into the cache, so the next :func:`load` is fast.
    """
    dataset = dataset_spec(name)
    paths = _paths(dataset, locate(name, data_dir, download=False))
    return [_verify_file(spec, paths[role]) for role, spec in dataset.files.items()]


def _verify_file(spec: FileSpec, path: Path) -> FileReport:
    """Verify one file and cache its decoded array when it passes."""
    try:
        raw = _read_raw(path, spec.raw_bytes)
        sha256 = hashlib.sha256(raw).hexdigest()
        problem = _digest_problem(spec, len(raw), sha256)
        if problem is not None:
            message = f"{path}: {problem}; {_advice(path)}"
            return FileReport(spec.filename, path, False, message, sha256)
        _write_cached(_cache_entry(path, spec), _parse_checked(raw, path), spec)
    except DataError as exc:
        return FileReport(spec.filename, path, False, str(exc), "")
    return FileReport(spec.filename, path, True, "ok", sha256)


def describe(
    name: str = "mnist", data_dir: str | os.PathLike[str] | None = None
) -> tuple[DataSource, list[FileInfo]]:
    """Where the files of ``name`` are and, per file, its size, IDX shape and cache state.

    Reads only the IDX headers, so it is fast; never downloads.
    """
    dataset = dataset_spec(name)
    source = find(name, data_dir, download=False)
    paths = _paths(dataset, source.folder)
    return source, [_file_info(spec, paths[role]) for role, spec in dataset.files.items()]


def _file_info(spec: FileSpec, path: Path) -> FileInfo:
    """Size, header shape and cache state of one file."""
    try:
        with path.open("rb") as handle:
            gzipped = handle.read(2) == GZIP_MAGIC
        with gzip.open(path, "rb") if gzipped else path.open("rb") as handle:
            head = handle.read(4 + 4 * 4)
        _, dims, _ = parse_header(head)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"{path}: unreadable IDX header ({exc}); {_advice(path)}") from None
    verified = _read_cached(_cache_entry(path, spec), spec) is not None
    return FileInfo(spec.filename, path, path.stat().st_size, dims, verified)


def load(
    name: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
) -> Dataset:
    """Load dataset ``name`` (finding or downloading it, see :func:`find`) as uint8 arrays.

    The first load of each file verifies its checksum; later loads read the decoded cache.
    Images come back flattened: (n, 28, 28) -> (n, 784).
    """
    dataset = dataset_spec(name)
    folder = locate(name, data_dir, progress=progress)
    paths = _paths(dataset, folder)
    arrays = {role: _load_file(spec, paths[role]) for role, spec in dataset.files.items()}
    for split in ("train", "test"):
        _check_split(dataset, arrays, split)
    flat = {role: a.reshape(len(a), -1) if a.ndim == 3 else a for role, a in arrays.items()}
    return Dataset(
        name=dataset.name,
        source=folder,
        checksums={spec.filename: spec.raw_sha256 for spec in dataset.files.values()},
        **flat,
    )


def _check_split(dataset: DatasetSpec, arrays: dict[str, np.ndarray], split: str) -> None:
    """Images (n, 28, 28) uint8, labels (n,) uint8 below 10, with the same n."""
    images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    image_file = dataset.files[f"{split}_images"].filename
    label_file = dataset.files[f"{split}_labels"].filename
    fix = f"check that the file belongs to {dataset.name}"
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"{image_file}: images are {images.dtype} {images.shape}, expected uint8 (n, 28, 28); "
            + fix
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{label_file}: labels are {labels.dtype} {labels.shape}, expected uint8 (n,); {fix}"
        )
    if len(labels) != len(images):
        raise DataError(
            f"{label_file}: {len(labels)} labels for {len(images)} images in {image_file}; {fix}"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DataError(f"{label_file}: label {int(labels.max())} is not a digit 0..9; {fix}")
