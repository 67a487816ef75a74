"""Benchmarks: each prints figures as ratios measured in the same run (``python -m bench.<name>``)."""
