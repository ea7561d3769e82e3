"""Provides the live terminal monitor (the only part of memtui that imports Textual)."""
