"""Provides pyc_bytes: a probe module's bytecode as an unchecked hash-based pyc for the zip.

Why: the target imports the probe from a zip, where it cannot cache bytecode, so it would
compile ~5k lines at every start (0.2 s of a 0.35 s budget on a slow core). The code comes
from the package's own ``__pycache__`` when fresh (importlib validates it), else is compiled
here, then renamed to its place inside the zip: code filenames decide what tracebacks show
and which frames the tracer counts as its own.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import marshal
import sys
from pathlib import Path
from types import CodeType

PYC_TAG: str = sys.implementation.cache_tag or "nocache"
"""Part of the zip's name: the bytecode inside is for this interpreter only."""
_UNCHECKED_HASH = (0b01).to_bytes(4, "little")
"""pyc flags: hash-based, not checked against the source (the zip holds both, built at once)."""


def _renamed(code: CodeType, filename: str) -> CodeType:
    """``code`` and every code object nested in it, with ``co_filename`` = ``filename``."""
    consts = tuple(_renamed(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _code(path: Path, source: bytes) -> CodeType:
    """The module's code: the package's cached bytecode when importlib finds it fresh."""
    loader = importlib.machinery.SourceFileLoader(path.stem, str(path))
    try:
        code = loader.get_code(path.stem)
    except (ImportError, OSError, SyntaxError, ValueError):
        code = None
    if code is None or loader.get_data(str(path)) != source:  # changed while we read it
        code = compile(source, str(path), "exec", dont_inherit=True)
    return code


def pyc_bytes(path: Path, source: bytes, filename: str) -> bytes | None:
    """The pyc for ``source`` (read from ``path``) as if compiled at ``filename``; None when
    this interpreter keeps no bytecode (the zip then holds sources only)."""
    if sys.implementation.cache_tag is None:
        return None
    try:
        code = _renamed(_code(path, source), filename)
    except (SyntaxError, ValueError):
        return None  # the target reports the error when it compiles the source
    header = importlib.util.MAGIC_NUMBER + _UNCHECKED_HASH + importlib.util.source_hash(source)
    return header + marshal.dumps(code)
