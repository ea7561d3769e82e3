"""Provides build_probe_zip: the standard-library half of memtui as one zip a target can import.

With ``bytecode=True`` (what `memtui run` asks for) the zip also holds each module's bytecode
for this interpreter: a target cannot cache bytecode in a zip, so without it every program
would compile the whole agent (~6k lines, 0.2 s) before its first line runs. The pycs are
unchecked hash-based ones (the zip holds sources and code written at once), their code
objects named after their place in the zip (tracebacks, and the tracer's filter of its own
frames, read ``co_filename``). A target of another Python version finds another magic number
in them, which zipimport skips for the source.

cached_probe_zip() keeps that zip in the user's private directory (``/tmp/memtui-UID/probe``),
built once per probe source and reused by every later run: compressing and renaming the code
at every start cost the monitor ~60 ms on a busy core.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import marshal
import os
import stat
import sys
import time
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING

import memtui

if TYPE_CHECKING:
    import zipfile

ZIP_PREFIX = "memtui-probe-"
CACHE_SUBDIR = "probe"
"""Under the socket directory: out of the way of detach, which removes the zips beside the
sockets once no agent remains."""
CACHE_KEEP = 16
CACHE_MAX_AGE_S = 86400.0
"""Zips of other sources (other versions, edits) beyond the newest CACHE_KEEP are removed once
unused for a day (a long run's exec'ed children may still need theirs)."""
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same bytes
_UNCHECKED_HASH = (0b01).to_bytes(4, "little")
"""pyc flags: hash-based, never checked against the source beside it."""


def _source_paths() -> list[tuple[str, Path]]:
    """(archive name, path) of memtui/__init__.py, markers.py and memtui/probe/**/*.py, sorted."""
    package = Path(memtui.__file__).resolve().parent
    files = [
        package / "__init__.py",
        package / "markers.py",
        *sorted((package / "probe").rglob("*.py")),
    ]
    return [(f"memtui/{p.relative_to(package).as_posix()}", p) for p in files]


def _renamed(code: CodeType, filename: str) -> CodeType:
    """``code`` and every code object nested in it, with ``co_filename`` = ``filename``."""
    consts = tuple(_renamed(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _code(path: Path, source: bytes) -> CodeType:
    """The module's code: the package's own cached bytecode when importlib finds it fresh
    (as an import would; reading it is ~50x cheaper than compiling), else compiled here."""
    import importlib.machinery

    loader = importlib.machinery.SourceFileLoader(path.stem, str(path))
    code: CodeType | None
    try:
        code = loader.get_code(path.stem)
    except (ImportError, OSError, SyntaxError, ValueError):
        code = None
    if code is None:
        code = compile(source, str(path), "exec", dont_inherit=True)
    return code


def pyc_bytes(path: Path, source: bytes, filename: str) -> bytes | None:
    """The pyc of ``source`` (read from ``path``) as if compiled at ``filename``; None when
    this interpreter keeps no bytecode or the source does not compile (the target then
    compiles it and reports the error itself)."""
    import importlib.util

    if sys.implementation.cache_tag is None:
        return None
    try:
        code = _renamed(_code(path, source), filename)
    except (SyntaxError, ValueError):
        return None
    header = importlib.util.MAGIC_NUMBER + _UNCHECKED_HASH + importlib.util.source_hash(source)
    return header + marshal.dumps(code)


def _entry(archive: zipfile.ZipFile, name: str, data: bytes, compress: int) -> None:
    import zipfile

    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = compress
    archive.writestr(info, data)


def _digest(sources: list[tuple[str, bytes]]) -> str:
    """The hex digest (first 12 digits) of the sources: names the zip, changes with the code."""
    digest = hashlib.sha256()
    for name, data in sources:
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:12]


def _zip_name(sources: list[tuple[str, bytes]], bytecode: bool) -> str:
    tag = f"-{sys.implementation.cache_tag}" if bytecode and sys.implementation.cache_tag else ""
    return f"{ZIP_PREFIX}{memtui.__version__}-{_digest(sources)}{tag}.zip"


def probe_zip_bytes(zip_path: str | None = None) -> tuple[bytes, str]:
    """The zip's bytes and the hex digest (first 12 digits) of its sources.

    With ``zip_path`` (where the target will import the zip from), each source also gets its
    bytecode, compiled for that place.
    """
    paths = _source_paths()
    sources = [(name, path.read_bytes()) for name, path in paths]
    return _zip_bytes(sources, paths, zip_path), _digest(sources)


def _zip_bytes(
    sources: list[tuple[str, bytes]], paths: list[tuple[str, Path]], zip_path: str | None
) -> bytes:
    import zipfile  # here: a run that reuses the cached zip never needs it

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for (name, data), (_, path) in zip(sources, paths, strict=True):
            _entry(archive, name, data, zipfile.ZIP_DEFLATED)
            if zip_path is not None:
                code = pyc_bytes(path, data, f"{zip_path}{os.sep}{name}")
                if code is not None:  # stored: zipimport reads it without inflating
                    _entry(archive, name + "c", code, zipfile.ZIP_STORED)
    return buffer.getvalue()


def build_probe_zip(
    dest_dir: str,
    *,
    uid: int | None = None,
    gid: int | None = None,
    bytecode: bool = False,
    durable: bool = True,
) -> str:
    """Write (or reuse) the probe zip in ``dest_dir`` and return its path.

    Args:
        dest_dir: an existing private directory, e.g. the target's socket directory.
        uid: owner to give the file (root attaching to another user's process); None keeps ours.
        gid: group to give the file, with ``uid``.
        bytecode: also this interpreter's bytecode, compiled for the zip's path in
            ``dest_dir`` (only when the target sees the zip at that same path).
        durable: fsync the file before it takes its name; a zip in a directory that lives
            only as long as its program (`memtui run`) needs no such care.

    Returns:
        The path ``dest_dir/memtui-probe-VERSION-HASH[-TAG].zip``; an identical existing file
        is reused.
    """
    paths = _source_paths()
    sources = [(name, p.read_bytes()) for name, p in paths]
    path = os.path.join(dest_dir, _zip_name(sources, bytecode))
    data = _zip_bytes(sources, paths, path if bytecode else None)
    with contextlib.suppress(OSError), open(path, "rb") as existing:
        if existing.read() == data:
            os.utime(path)  # in use again: detach keeps zips used within a day
            return path
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if durable:
                os.fsync(out.fileno())
            if uid is not None and uid != os.geteuid():
                os.fchown(out.fileno(), uid, -1 if gid is None else gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def cached_probe_zip(cache_dir: str | None = None) -> str | None:
    """The probe zip with bytecode in the user's private cache, built there if missing.

    Args:
        cache_dir: the cache (default ``/tmp/memtui-UID/probe``); it and its parent are made
            0700, and refused when not ours and private.

    Returns:
        The zip's path, or None when no private cache can be had (the caller then builds a
        zip of its own).
    """
    from memtui.probe.protocol import socket_dir
    from memtui.probe.server import AgentError, check_dir

    if cache_dir is None:
        cache_dir = os.path.join(socket_dir(), CACHE_SUBDIR)
    try:
        check_dir(os.path.dirname(cache_dir))
        check_dir(cache_dir)
    except AgentError:
        return None
    sources = [(name, p.read_bytes()) for name, p in _source_paths()]
    path = os.path.join(cache_dir, _zip_name(sources, bytecode=True))
    if _usable(path):
        with contextlib.suppress(OSError):
            os.utime(path)  # in use: kept by _evict, and by /tmp's own ageing
        return path
    try:
        path = build_probe_zip(cache_dir, bytecode=True)
    except OSError:
        return None
    _evict(cache_dir, keep=os.path.basename(path))
    return path


_END_RECORD = b"PK\x05\x06"
"""A zip's end-of-central-directory record: the last 22 bytes of ours (they have no comment)."""


def _usable(path: str) -> bool:
    """A zip we wrote (renamed into place whole): a regular file of ours that ends as a zip
    does (checked by hand: zipfile is not imported on this path, once per run)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_size < 22:
            return False
        with open(path, "rb") as f:
            f.seek(-22, os.SEEK_END)
            return f.read(4) == _END_RECORD
    except OSError:
        return False


def _evict(cache_dir: str, keep: str) -> None:
    try:
        names = [n for n in os.listdir(cache_dir) if n.startswith(ZIP_PREFIX) and n != keep]
    except OSError:
        return
    aged: list[tuple[float, str]] = []
    for name in names:
        with contextlib.suppress(OSError):
            aged.append((os.lstat(os.path.join(cache_dir, name)).st_mtime, name))
    aged.sort(reverse=True)
    now = time.time()
    for mtime, name in aged[CACHE_KEEP - 1 :]:
        if now - mtime > CACHE_MAX_AGE_S:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(cache_dir, name))
