"""Provides the leak verdict: the online detector, its floor store, statistics and events."""
