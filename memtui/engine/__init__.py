"""Provides analysis of memory facts: profiler API, snapshots, metrics, leak detection, reports.

The engine never imports Textual, memtui.remote or memtui.cli.
"""
