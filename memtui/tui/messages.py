"""Provides the messages that workers post to the monitor app (past-tense facts)."""

from __future__ import annotations

from textual.message import Message

from memtui.engine.monitor.frame import CommandResult, MonitorFrame


class FrameReceived(Message):
    """The source produced a new frame."""

    def __init__(self, frame: MonitorFrame) -> None:
        super().__init__()
        self.frame = frame
        """The new frame."""

    def can_replace(self, message: Message) -> bool:
        # Sampling may outrun painting: a newer frame makes a queued one pointless.
        return isinstance(message, FrameReceived)


class CommandFinished(Message):
    """A command sent to the source (dump, export, snapshot...) finished."""

    def __init__(self, command: str, result: CommandResult) -> None:
        super().__init__()
        self.command = command
        """The command's name, as in ``MemtuiApp.COMMAND_TITLES``."""
        self.result = result
        """What the source said."""
