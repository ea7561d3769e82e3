"""Provides injection on Python >= 3.14: sys.remote_exec, run by the target itself (PEP 768)."""

from __future__ import annotations

import os
import secrets
import subprocess
import time

from memtui.remote.attach.target import AttachError, Target


def inject_remote_exec(
    target: Target, payload: bytes, host_dir: str, inner_dir: str, deadline: float
) -> None:
    """Python >= 3.14: sys.remote_exec, run by the target's own interpreter (PEP 768)."""
    name = f"attach-{target.inner_pid}-{secrets.token_hex(4)}.py"
    with open(os.path.join(host_dir, name), "wb") as f:
        f.write(payload)
        if target.uid != os.geteuid():
            os.fchown(f.fileno(), target.uid, target.gid)
    code = f"import sys; sys.remote_exec({target.pid}, {os.path.join(inner_dir, name)!r})"
    try:
        subprocess.run(
            [f"/proc/{target.pid}/exe", "-I", "-S", "-c", code],
            check=True,
            capture_output=True,
            text=True,
            timeout=max(1.0, deadline - time.monotonic()),
        )
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or "").strip().splitlines() or ["no output"]
        raise AttachError(f"sys.remote_exec failed: {lines[-1]}") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AttachError(f"sys.remote_exec failed: {exc}") from None
