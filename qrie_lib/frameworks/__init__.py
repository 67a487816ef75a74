"""Compliance frameworks as data beside the policies: one JSON file per framework (its controls,
exactly as the framework lists them); see ``registry.py``."""
