"""Qrie's library: models, settings, AWS access, stores, service collectors and policies."""
