"""Provides heap-dump analysis: reading dumps, dominators, diffs and the threshold trigger."""
