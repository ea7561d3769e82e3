"""Provides the heap walks that run in a forked copy of the target: dumps and summaries."""
