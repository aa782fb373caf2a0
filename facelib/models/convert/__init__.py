"""Converters: upstream checkpoints -> facelib model packages (heavy tools imported lazily).

Every converter module ``facelib.models.convert.<name>`` exposes::

    def build_package(sources: Mapping[str, Path], output_dir: Path, *,
                      progress: bool = False, **options: Any) -> ModelPackage

``sources`` maps the converter's documented source roles (e.g. ``"checkpoint"``) to local
files; the card written records, for each source, its file name and sha256 (and URL when
known), the converter and facelib version, and the options used.
"""
