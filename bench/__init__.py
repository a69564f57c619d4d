"""Benchmarks: scripts that print measured figures (``python -m bench.<name>``)."""
