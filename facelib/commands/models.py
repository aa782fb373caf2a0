"""``facelib models``: the model hub from the command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from facelib.commands._common import (
    _print_json,
    _table,
)

# --- facelib models --------------------------------------------------------------------------


def _add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list, fetch, locate and remove cached model packages")
    inner = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mirror", metavar="URL|DIR", help="mirror laid out like shared/assets ($FACELIB_MIRROR)")
    common.add_argument("--offline", action="store_true", default=None, help="never use the network ($FACELIB_OFFLINE)")
    p_list = inner.add_parser("list", help="every known model: task, licence, size, cached or not")
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_fetch = inner.add_parser("fetch", parents=[common], help="download, verify and convert a model into the cache")
    p_fetch.add_argument("name", help="model name (see 'facelib models list')")
    p_fetch.add_argument(
        "--accept-licence", action="store_true", help="accept a non-commercial licence (FaceFormer, FOMM)"
    )
    p_fetch.add_argument(
        "--allow-unverified", action="store_true", help="accept files whose sha256 upstream never published"
    )
    p_fetch.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="ROLE=PATH",
        help="use a file you downloaded by hand for a source role (e.g. checkpoint=~/vox-cpk.pth.tar)",
    )
    prebuilt = p_fetch.add_mutually_exclusive_group()
    prebuilt.add_argument("--prebuilt", dest="prebuilt", action="store_true", default=None, help="use mirror ONNX")
    prebuilt.add_argument("--convert", dest="prebuilt", action="store_false", help="always convert upstream files")
    p_fetch.add_argument("--force", action="store_true", help="rebuild even if cached")
    p_fetch.add_argument("--quiet", action="store_true", help="no progress output")
    p_path = inner.add_parser("path", help="print the directory of a cached model package")
    p_path.add_argument("name")
    p_remove = inner.add_parser("remove", help="delete a cached model package")
    p_remove.add_argument("name")
    p_remove.add_argument("--downloads", action="store_true", help="also delete its downloaded upstream files")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.models import hub

    if args.models_command == "list":
        infos = hub.list_models()
        if args.json:
            _print_json([i.to_dict() for i in infos])
            return 0
        rows = [
            [
                i.name,
                i.task,
                f"{i.size / 1e6:.1f} MB" if i.size else "?",
                ("NON-COMMERCIAL: " if i.non_commercial else "") + i.licence,
                ", ".join(n for n, on in (("manual download", i.manual), ("prebuilt on mirrors", i.prebuilt)) if on),
                str(i.path) if i.path else "-",
            ]
            for i in infos
        ]
        print(_table(rows, ["name", "task", "download", "licence", "notes", "cached at"]))
        return 0
    if args.models_command == "fetch":
        files = {}
        for item in args.file:
            role, sep, path = item.partition("=")
            if not sep or not role or not path:
                raise InputError(f"--file expects ROLE=PATH, got {item!r}")
            files[role] = path
        path = hub.ensure_package(
            args.name,
            offline=args.offline,
            progress=not args.quiet,
            mirror=args.mirror,
            accept_licence=args.accept_licence,
            allow_unverified=args.allow_unverified,
            prebuilt=args.prebuilt,
            files=files,
            force=args.force,
        )
        print(path)
        return 0
    if args.models_command == "path":
        print(hub.package_path(args.name))
        return 0
    removed = hub.remove(args.name, downloads=args.downloads)
    print(f"removed {args.name}" if removed else f"{args.name} was not cached")
    return 0


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = [_add_models]
CONVERTERS: list[Callable[[Any], None]] = []
EVALUATIONS: list[Callable[[Any], None]] = []
