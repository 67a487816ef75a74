"""The policy catalogue: one declaration per policy, pure evaluation; see ``registry.py``."""
