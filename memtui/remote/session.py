"""Provides AgentSession: pulls frames from an in-target agent and analyses them on this side.

Everything expensive (leak detection, ranking, report building) happens here, in the monitor,
never in the target. The same engine code serves the in-process MemoryProfiler.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from memtui.engine.analysis import ProcessAnalysis
from memtui.engine.culprits.signatures import Suspect
from memtui.engine.culprits.site_rows import SiteLeak, stats_from_rows, window_leaks
from memtui.engine.detect.events import LeakVerdict
from memtui.engine.detect.memlimit import detect_memory_limit
from memtui.engine.facts.frames import (
    HeapSummary,
    HistoryMean,
    decode_frame,
)
from memtui.engine.facts.snapshot import AllocationStat
from memtui.engine.intake import FrameIntake
from memtui.engine.report.json_report import (
    ReportInput,
    SourceInfo,
    lifted_verdict,
)
from memtui.engine.report.recording import Recording, timeline_from_metrics
from memtui.errors import ReportError
from memtui.probe.allocator import AllocatorReading
from memtui.probe.heap.summary import summary_note
from memtui.probe.memory import MemoryReading
from memtui.remote.client import DEFAULT_TIMEOUT_S, AgentClient, AgentUnavailable
from memtui.remote.notices import RecordingHealth
from memtui.remote.procstate import is_gone, stopped_reason

RECONNECT_TIMEOUT_S: float = 2.0
"""A target that did not answer gets a short hello on each later poll (polls stay bounded)."""

MIB: float = 1024.0 * 1024.0
SUMMARY_REQUEST_EVERY_S: float = 60.0
"""While a leak is suspected, the agent is asked again this often (it holds the suspicion
for memtui.probe.heap.summary.SUSPECT_HOLD_S)."""


class AgentSession(FrameIntake):
    """The monitor's view of one agent-equipped process: its frames, pulled from the socket,
    go through the same intake (memtui.engine.intake) as the in-process profiler's."""

    def __init__(
        self,
        client: AgentClient,
        growth_threshold_mb_per_hour: float = 10.0,
        alert_threshold_mb: float | None = 1000.0,
        trace_limit: int = 100,
    ) -> None:
        self.client = client
        hello = client.hello
        pid = int(hello.get("pid", 0))
        self.python_version = str(hello.get("python", ""))
        self.argv = [str(a) for a in hello.get("argv", [])]
        self.capabilities = [str(c) for c in hello.get("capabilities", [])]
        self.growth_threshold_mb_per_hour = growth_threshold_mb_per_hour
        self.alert_threshold_mb = alert_threshold_mb
        limit = detect_memory_limit(pid)
        self.memory_limit = limit
        analysis = ProcessAnalysis(growth_threshold_mb_per_hour, alert_threshold_mb, limit)
        super().__init__(analysis, pid, trace_limit)
        self.ended = False
        self.started_wall = float(hello.get("started_at", time.time()))
        self.first_poll_wall = time.time()
        self.last_poll_wall = self.first_poll_wall
        rec = hello.get("recording")
        self.recording_path: str | None = rec if isinstance(rec, str) and rec else None
        """The agent's recording (memtui run --record), replayed on the first frame."""
        self._requested_state = "ok"
        self._requested_at = 0.0
        self.not_answering = ""
        """Why the agent does not answer while its process lives ('' when it answers)."""
        self.notices: list[str] = []
        """One-line notices for the user (the recording stopped or resumed writing)."""
        self._recording_health = RecordingHealth()
        self.sites_version: str | None = None
        """The agent's site ranking this session holds (sent again only when it changes)."""

    def poll(self) -> bool:
        """Pull what is new; False once the agent is gone (the target exited or detached).

        A target that is alive but does not answer (stopped, or a C call holding the GIL) is
        not gone: the session says so once, keeps watching and reconnects when it answers.
        """
        if self.ended:
            return False
        if self.not_answering and not self._reconnect():
            return not self.ended
        try:
            frame = self.client.request(
                "frame",
                since=self.seq,
                summary_seq=self.summary_seq,
                sites_version=self.sites_version,
            )
        except AgentUnavailable as exc:
            return self._lost_agent(str(exc))
        self.apply_frame(frame)
        self._ask_for_summary()
        return True

    def _agent_gone(self) -> bool:
        """The process exited, or its agent stopped and removed its socket (detach)."""
        return is_gone(self.pid) or not os.path.exists(self.client.path)

    def _lost_agent(self, why: str) -> bool:
        self.client.close()  # a late reply would answer the next request: never reuse it
        if self._agent_gone():
            self.ended = True
            return False
        if not self.not_answering:
            self.not_answering = stopped_reason(self.pid) or why
            self.notices.append(
                f"the agent is not answering ({self.not_answering}); still watching, the "
                "process is alive"
            )
        return True

    def _reconnect(self) -> bool:
        """Try the agent again (not while the process is stopped); True once it answers."""
        stopped = stopped_reason(self.pid)
        if stopped:
            self.not_answering = stopped
            return False
        try:
            self.client = AgentClient(self.client.path, timeout_s=RECONNECT_TIMEOUT_S)
        except AgentUnavailable as exc:
            return self._lost_agent(str(exc))
        self.client.set_timeout(DEFAULT_TIMEOUT_S)
        self.not_answering = ""
        self.notices.append("the agent answers again")
        return True

    def _ask_for_summary(self) -> None:
        """When the detector starts to suspect a leak, a heap summary now says what grows."""
        state = self.detector.verdict.state
        now = time.monotonic()
        again = now - self._requested_at >= SUMMARY_REQUEST_EVERY_S
        if state != "ok" and (self._requested_state == "ok" or again):
            if "heap_summary" in self.capabilities:
                try:
                    self.client.request("heap_summary")
                except AgentUnavailable:
                    return
            self._requested_at = now
        self._requested_state = state

    def apply_frame(self, raw: Mapping[str, Any]) -> None:
        """One agent frame: decoded once and analysed (memtui.engine.intake); the first one
        after what the agent's recording or history holds from before we came."""
        frame = decode_frame(raw)
        self.last_poll_wall = time.time()
        version = raw.get("sites_version")
        if isinstance(version, str) and frame.sites is not None:
            self.sites_version = version  # the ranking we hold; the agent resends on change
        if self.seq == 0 and not self._replay_recording():
            self._replay_history(frame.history)
        self.observe_frame(frame)
        notice = self._recording_health.update(frame.recording_state)
        if notice:
            self.notices.append(notice)

    def observe_heap_summary(self, summary: HeapSummary) -> None:
        """One heap summary from the agent (the culprits' clock starts with the agent's run)."""
        self.culprits.start_t = self.metrics.start_t_s or self.started_wall
        super().observe_heap_summary(summary)

    def _replay_recording(self) -> bool:
        """Feed what the agent's recording holds (the whole run, also from before we came).

        True when the recording was read; False (use the agent's history) when there is none
        or it cannot be read here.
        """
        path = self.recording_path
        if self.skip_until_s is not None or path is None or not os.access(path, os.R_OK):
            return False
        try:
            with Recording(path) as rec:
                # This agent's run only (a recording may be appended to by earlier runs).
                series = rec.series(self.started_wall - 1.0)
        except ReportError:
            return False
        if len(series) == 0:
            return False
        for t, rss, vms, traced, blocks in zip(
            series.t.tolist(),
            series.rss.tolist(),
            series.vms.tolist(),
            series.traced.tolist(),
            series.blocks.tolist(),
            strict=True,
        ):
            if rss <= 0:
                continue
            self.metrics.add_sample(
                t,
                MemoryReading(int(rss), int(vms)),
                int(traced),
                AllocatorReading(allocated_blocks=int(blocks)),
                None,
            )
            self.detector.update(t, rss)
        self.detector.drain_events()  # events of the past are in the verdict, not news
        self.skip_until_s = float(series.t[-1])
        return True

    def _replay_history(self, points: Sequence[HistoryMean]) -> None:
        """Feed what the agent recorded before we came (bucket means), oldest first."""
        for p in points:
            if p.rss_bytes <= 0:
                continue
            self.metrics.add_sample(
                p.t_end_s,
                MemoryReading(int(p.rss_bytes), int(p.vms_bytes)),
                int(p.traced_bytes),
                AllocatorReading(allocated_blocks=int(p.allocated_blocks)),
                None,
            )
            self.detector.update(p.t_end_s, p.rss_bytes)
        self.detector.drain_events()  # events of the past are in the verdict, not news

    def top_allocators(self, limit: int | None = None) -> list[AllocationStat]:
        """The sites in the agent's order, with their growth and rate (from the second
        window on in watch mode, where sizes are the window figure; held sizes otherwise)."""
        stats = stats_from_rows(self.site_rows, self.size_kind())
        live = [s for s in stats if s.size > 0 or (s.growth_bytes or 0) > 0]
        return live[: limit or self.trace_limit]

    def leaking_allocators(self) -> list[SiteLeak]:
        """Lines that leak: consistent window growth backed by the process's own growth (watch
        mode, memtui.engine.culprits.site_rows), or held bytes rising across full traces."""
        if self.size_kind() == "window":
            live = self.detector.verdict
            verdict = live if live.state != "ok" else self.detector.final_verdict()
            if verdict.state == "ok" and not verdict.leak_detected:  # the report's rule
                verdict = lifted_verdict(
                    verdict, self.culprits.suspects(), self.growth_threshold_mb_per_hour
                )
            leaks = verdict.state != "ok" or verdict.leak_detected
            blocks = self.tracing.get("process_blocks_per_s")  # measured in the windows
            if not isinstance(blocks, (int, float)) or isinstance(blocks, bool):
                blocks = None
            rows = window_leaks(self.site_rows, leaks, verdict.rate_mb_per_hour,
                                process_blocks_per_s=blocks)  # fmt: skip
            return rows[: self.trace_limit]
        growing = self.site_tracker.leaking()
        return [SiteLeak.from_growth(g) for g in growing[: self.trace_limit]]

    def report_input(self) -> ReportInput:
        mode = str(self.tracing.get("mode", "watch"))
        note = (
            "allocation sites from short tracing windows (watch mode): top_allocators sizes "
            "(size_kind 'window') are what a typical window saw a line allocate and keep, not "
            "what it holds; growth and rate are the window growth rate times the time watched"
            if mode == "watch"
            else ""
        )
        if self.ended:
            note = (note + "; " if note else "") + "the target exited while it was watched"
        heap_note = summary_note(self.heap_summaries)
        if heap_note:
            note = f"{note}; {heap_note}" if note else heap_note
        return ReportInput(
            source=SourceInfo(
                pid=self.pid,
                kind="agent",
                command=" ".join(self.argv),
                python_version=self.python_version,
                note=note,
                ended=self.ended,
            ),
            start_wall=self.metrics.start_t_s or self.first_poll_wall,
            end_wall=self.last_poll_wall,
            metrics=self.metrics,
            verdict=self.detector.final_verdict(),
            growth_threshold_mb_per_hour=self.growth_threshold_mb_per_hour,
            alert_threshold_mb=self.alert_threshold_mb,
            top_allocators=tuple(self.top_allocators()),
            leaking_sites=tuple(self.leaking_allocators()),
            snapshots=self.snapshots.items,
            events=self.detector.events,
            memory_limit_bytes=self.memory_limit.limit_bytes,
            memory_limit_source=self.memory_limit.source,
            culprits=self._culprits_report(),
            extra={
                "agent": {"capabilities": self.capabilities, "tracing": self.tracing},
                "timeline": timeline_from_metrics(
                    self.metrics, self.metrics.start_t_s or self.first_poll_wall
                ),
                "markers": [
                    {
                        **m,
                        "timestamp": time.strftime(
                            "%Y-%m-%dT%H:%M:%S", time.gmtime(m["timestamp"])
                        ),
                        "at_seconds": m["timestamp"] - (self.metrics.start_t_s or 0.0),
                    }
                    for m in self.markers
                ],
            },
        )

    def shown_verdict(self, suspects: Sequence[Suspect]) -> LeakVerdict:
        """The live verdict as the monitor shows it (json_report.lifted_verdict): the header
        never says OK beside a container the suspects pane shows growing steadily."""
        return lifted_verdict(self.detector.verdict, suspects, self.growth_threshold_mb_per_hour)

    def _culprits_report(self) -> dict[str, Any]:
        self.culprits.start_t = self.metrics.start_t_s or self.started_wall
        report = self.culprits.to_report()
        report["heap"]["collection"] = self.heap_summaries
        return report

    def close(self) -> None:
        self.client.close()
