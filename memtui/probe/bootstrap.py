"""Provides the one-import start of the agent from MEMTUI_* variables (for a sitecustomize).

``import memtui.probe.bootstrap`` starts the agent (see agent.start_agent_from_env) and never
raises: on failure it prints one line to stderr and the program runs on unobserved.
"""

from __future__ import annotations

import sys


def _boot() -> None:
    try:
        from memtui.probe.agent import AgentError, start_agent_from_env
    except Exception as exc:  # a broken probe copy must not stop the program: say so, go on
        print(f"memtui: the agent did not start: {exc!r}", file=sys.stderr)
        return
    try:
        start_agent_from_env()
    except AgentError as exc:
        print(str(exc), file=sys.stderr)
    except Exception as exc:  # the agent must never stop the program: one line, then go on
        print(f"memtui: the agent did not start: {type(exc).__name__}: {exc}", file=sys.stderr)


_boot()
