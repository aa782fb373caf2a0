"""Helpers for testing backends: real models with real inputs, for plugin authors' own tests."""
