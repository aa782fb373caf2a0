"""Which ONNX Runtime build is installed: its distribution(s) and execution providers.

ONNX Runtime ships one Python module, ``onnxruntime``, in several distributions (``onnxruntime``
for CPU, ``onnxruntime-gpu`` for CUDA/TensorRT, ``onnxruntime-cann`` for Ascend,
``onnxruntime-openvino`` for Intel, ...).  Only one may be installed: a second one overwrites the
first one's files.  facelib's runtime extras (``cpu``, ``cuda``, ``cann``, ``openvino``) each bring
exactly one; this module tells ``facelib backends`` which one is there and what it offers.
"""

from __future__ import annotations

import functools

from importlib_metadata import packages_distributions, version

__all__ = ["RUNTIME_EXTRAS", "describe", "installed_distributions", "missing_runtime_message"]

#: facelib extra -> the onnxruntime distribution it installs.
RUNTIME_EXTRAS: dict[str, str] = {
    "cpu": "onnxruntime",
    "cuda": "onnxruntime-gpu",
    "cann": "onnxruntime-cann",
    "openvino": "onnxruntime-openvino",
}


@functools.lru_cache(maxsize=1)
def installed_distributions() -> tuple[str, ...]:
    """Names (with versions) of the installed distributions that provide the ``onnxruntime`` module.

    E.g. ``("onnxruntime-gpu 1.31.1",)``; more than one entry means a broken environment.
    Cached: installing packages while a process runs is not supported anyway.
    """
    names = sorted(set(packages_distributions().get("onnxruntime", [])), key=str.lower)
    out = []
    for name in names:
        try:
            out.append(f"{name} {version(name)}")
        except Exception:  # noqa: BLE001 - a damaged dist-info still names the distribution
            out.append(name)
    return tuple(out)


def missing_runtime_message() -> str:
    """What to install when the ``onnxruntime`` module is missing (one sentence)."""
    extras = ", ".join(f"facelib[{e}] ({d})" for e, d in RUNTIME_EXTRAS.items() if e != "cpu")
    return f"no ONNX Runtime is installed: pip install 'facelib[cpu]', or exactly one of {extras}"


def describe(providers: list[str]) -> tuple[bool, str]:
    """(healthy, sentence) about the installed build, given its available execution providers.

    Unhealthy when several onnxruntime distributions are installed at once; the sentence then
    says how to repair the environment.
    """
    dists = installed_distributions()
    text = f"execution providers: {', '.join(providers)}"
    if len(dists) > 1:
        names = " ".join(d.split()[0] for d in dists)
        return False, (
            f"{len(dists)} onnxruntime builds are installed at once ({', '.join(dists)}) and overwrite each "
            f"other's files: pip uninstall -y {names}, then install exactly one runtime extra "
            "(facelib[cpu], [cuda], [cann] or [openvino]); " + text
        )
    return True, f"{dists[0]}; {text}" if dists else text
