"""Provides the monitor's frames and the pure builders every source uses to make them."""
