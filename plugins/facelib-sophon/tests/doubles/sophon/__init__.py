"""Test double of the SOPHON SAIL distribution (import name ``sophon.sail``)."""
