"""Provides the monitor side of watching another process: client, launcher, attach, sources."""
