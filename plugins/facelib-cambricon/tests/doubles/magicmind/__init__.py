"""Test double of Cambricon MagicMind (import magicmind.python.runtime)."""
