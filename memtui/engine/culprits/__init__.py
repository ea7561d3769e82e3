"""Provides culprit naming: signatures, triage, retainer paths and allocation-site growth."""
