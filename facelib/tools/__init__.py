"""Measuring tools shared by every backend: ``facelib bench`` and ``facelib check``."""
