"""Interop checks of our output against third-party verifiers (Go sumdb note/tlog)."""
