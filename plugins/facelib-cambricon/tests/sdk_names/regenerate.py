"""Regenerate ``magicmind-samples.txt``: the MagicMind names Cambricon's own samples use.

    python plugins/facelib-cambricon/tests/sdk_names/regenerate.py /path/to/magicmind_cloud

MagicMind ships only inside Cambricon's docker image (no wheel, no binding source), so the
reference is github.com/Cambricon/magicmind_cloud (release v1.7, commit dc085c1): every
identifier its Python files reach through ``mm.``/``.name`` attribute access or import.  A
name the double offers that no vendor sample uses is unconfirmed (see test_magicmind_names.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def identifiers(text: str) -> set[str]:
    found = set(re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)", text))
    found |= set(re.findall(r"\bimport\s+([A-Za-z_][A-Za-z0-9_]*)", text))
    for group in re.findall(r"\bfrom\s+[\w.]+\s+import\s+([A-Za-z_][A-Za-z0-9_, ]*)", text):
        found |= {n.strip() for n in group.split(",") if n.strip()}
    return found


def main() -> None:
    checkout = Path(sys.argv[1])
    found: set[str] = set()
    if (checkout / "buildin").is_dir():
        for path in checkout.rglob("*.py"):
            found |= identifiers(path.read_text(errors="replace"))
        git = ["git", "-C", str(checkout)]
    else:  # a bare mirror
        git = ["git", "--git-dir", str(checkout)]
        files = subprocess.run([*git, "ls-tree", "-r", "HEAD", "--name-only"], capture_output=True, text=True).stdout
        py = [f for f in files.split() if f.endswith(".py")]
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "src.tar"
            subprocess.run([*git, "archive", "-o", str(archive), "HEAD", *py], check=True)
            with tarfile.open(archive) as tar:
                for member in tar.getmembers():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found |= identifiers(handle.read().decode(errors="replace"))
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    target = HERE / "magicmind-samples.txt"
    header = f"# identifiers used by Cambricon/magicmind_cloud @ {commit} Python samples (regenerate.py)\n"
    target.write_text(header + "\n".join(sorted(found)) + "\n")
    print(f"{target.name}: {len(found)} names")


if __name__ == "__main__":
    main()
