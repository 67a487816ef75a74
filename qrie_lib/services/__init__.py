"""Service collectors, one module per AWS service; see ``registry.py``."""
