"""Provides attach/detach: inject the stdlib-only probe's agent into a running CPython.

By mechanism: ``target`` (what we learn of the process first, and the payload), ``safepoint``
(where the payload may run, through gdb), ``gdb`` (gdb as a ptrace engine), ``remote_exec``
(Python >= 3.14), ``control`` (attach and detach themselves).
"""

from __future__ import annotations

from memtui.remote.attach.control import attach, attach_quietly, detach
from memtui.remote.attach.target import AttachError, AttachResult

__all__ = ["AttachError", "AttachResult", "attach", "attach_quietly", "detach"]
