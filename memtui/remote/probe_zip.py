"""Provides build_probe_zip: the standard-library half of memtui as one zip a target can import.

Beside each source the zip holds its bytecode for this interpreter (unchecked hash-based pycs,
see memtui.remote.probe_pyc): a target cannot write bytecode into a zip, so without them it
would compile the whole agent at every start. A target of another Python version finds a pyc
with another magic number, which zipimport skips for the source.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import zipfile
from pathlib import Path

import memtui
from memtui.remote.probe_pyc import PYC_TAG, pyc_bytes

ZIP_PREFIX = "memtui-probe-"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same bytes


def _source_paths() -> list[tuple[str, Path]]:
    """(archive name, path) of memtui/__init__.py, markers.py and memtui/probe/**/*.py, sorted."""
    package = Path(memtui.__file__).resolve().parent
    files = [
        package / "__init__.py",
        package / "markers.py",
        *sorted((package / "probe").rglob("*.py")),
    ]
    return [(f"memtui/{p.relative_to(package).as_posix()}", p) for p in files]


def _sources() -> list[tuple[str, bytes]]:
    """(archive name, bytes) of memtui/__init__.py, markers.py and memtui/probe/**/*.py, sorted."""
    return [(name, path.read_bytes()) for name, path in _source_paths()]


def _entry(archive: zipfile.ZipFile, name: str, data: bytes, compress: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = compress
    archive.writestr(info, data)


def probe_zip_bytes(zip_path: str | None = None) -> tuple[bytes, str]:
    """The zip's bytes and the hex digest (first 12 digits) of its sources.

    With ``zip_path`` (where the zip will be), each source also gets its bytecode, compiled
    for that place (tracebacks and the tracer's own-frame filter read code filenames).
    """
    paths = _source_paths()
    sources = [(name, path.read_bytes()) for name, path in paths]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for (name, data), (_, path) in zip(sources, paths, strict=True):
            _entry(archive, name, data, zipfile.ZIP_DEFLATED)
            if zip_path is not None:
                code = pyc_bytes(path, data, f"{zip_path}{os.sep}{name}")
                if code is not None:  # stored: zipimport reads it without inflating
                    _entry(archive, name + "c", code, zipfile.ZIP_STORED)
    return buffer.getvalue(), _digest(sources)


def _digest(sources: list[tuple[str, bytes]]) -> str:
    """The hex digest (first 12 digits) of the sources: names the zip, changes with the code."""
    digest = hashlib.sha256()
    for name, data in sources:
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:12]


def build_probe_zip(dest_dir: str, *, uid: int | None = None, gid: int | None = None) -> str:
    """Write (or reuse) the probe zip in ``dest_dir`` and return its path.

    Args:
        dest_dir: an existing private directory, e.g. the target's socket directory.
        uid: owner to give the file (root attaching to another user's process); None keeps ours.
        gid: group to give the file, with ``uid``.

    Returns:
        The path ``dest_dir/memtui-probe-VERSION-HASH.zip``; an identical existing file is reused.
    """
    digest = _digest(_sources())
    path = os.path.join(dest_dir, f"{ZIP_PREFIX}{memtui.__version__}-{digest}-{PYC_TAG}.zip")
    data = probe_zip_bytes(path)[0]
    with contextlib.suppress(OSError), open(path, "rb") as existing:
        if existing.read() == data:
            return path
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            if uid is not None and uid != os.geteuid():
                os.fchown(out.fileno(), uid, -1 if gid is None else gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
