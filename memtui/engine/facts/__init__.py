"""Provides the engine's typed facts: snapshots, running metrics, and decoding of agent shapes."""
