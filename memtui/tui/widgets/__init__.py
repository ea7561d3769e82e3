"""Provides the monitor's panes."""
