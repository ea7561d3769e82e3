"""Provides the collectors that run inside the profiled process; standard library only.

Nothing in this package may import anything outside the standard library, nor anything
of memtui outside ``memtui.probe``: it is shipped into targets that know nothing of memtui.
"""
