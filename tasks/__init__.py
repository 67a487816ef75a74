"""Thin Lambda handlers, one module per task; ``registry.py`` lists them."""
