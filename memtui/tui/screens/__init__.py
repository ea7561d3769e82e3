"""Provides the monitor's overlays: help, traceback and the quit question."""
