"""The subcommands of the ``facelib`` command line, one module per area (see :mod:`facelib.cli`)."""
