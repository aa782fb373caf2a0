"""``python -m facelib`` runs the command-line interface."""

from facelib.cli import main

raise SystemExit(main())
