"""Test fixture package for facelib's plugin loading."""
