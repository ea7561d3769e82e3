"""Provides build_probe_zip: the standard-library half of memtui as one zip a target can import."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import zipfile
from pathlib import Path

import memtui

ZIP_PREFIX = "memtui-probe-"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same bytes


def _sources() -> list[tuple[str, bytes]]:
    """(archive name, bytes) of memtui/__init__.py, markers.py and memtui/probe/**/*.py, sorted."""
    package = Path(memtui.__file__).resolve().parent
    files = [
        package / "__init__.py",
        package / "markers.py",
        *sorted((package / "probe").rglob("*.py")),
    ]
    return [(f"memtui/{p.relative_to(package).as_posix()}", p.read_bytes()) for p in files]


def probe_zip_bytes() -> tuple[bytes, str]:
    """The zip's bytes and the hex digest (first 12 digits) of its sources."""
    sources = _sources()
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sources:
            digest.update(name.encode() + b"\0" + data + b"\0")
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue(), digest.hexdigest()[:12]


def build_probe_zip(dest_dir: str, *, uid: int | None = None, gid: int | None = None) -> str:
    """Write (or reuse) the probe zip in ``dest_dir`` and return its path.

    Args:
        dest_dir: an existing private directory, e.g. the target's socket directory.
        uid: owner to give the file (root attaching to another user's process); None keeps ours.
        gid: group to give the file, with ``uid``.

    Returns:
        The path ``dest_dir/memtui-probe-VERSION-HASH.zip``; an identical existing file is reused.
    """
    data, digest = probe_zip_bytes()
    path = os.path.join(dest_dir, f"{ZIP_PREFIX}{memtui.__version__}-{digest}.zip")
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
