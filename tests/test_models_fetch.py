"""Fetching upstream artefacts from a real HTTP mirror on loopback (../shared/assets)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import attrs
import pytest
from mirror_server import MirrorServer

from facelib.errors import DownloadError
from facelib.models import fetch as fetch_mod
from facelib.models import registry
from facelib.models.fetch import LicenceNotAcceptedError, cached_path, fetch_artefact

ROOT = Path(__file__).resolve().parents[1]
REL = "models/ultraface/version-RFB-320.onnx"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Private cache; no env settings leak in; no connection leaves 127.0.0.1."""
    monkeypatch.setenv("FACELIB_HOME", str(tmp_path / "home"))
    for var in ("FACELIB_MIRROR", "FACELIB_OFFLINE", "FACELIB_ACCEPT_LICENCE"):
        monkeypatch.delenv(var, raising=False)
    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        assert host in ("127.0.0.1", "localhost") or self.family == socket.AF_UNIX, f"test tried {address}"
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", loopback_only)


@pytest.fixture()
def server(shared: Path) -> MirrorServer:
    with MirrorServer(shared / "assets") as srv:
        yield srv


@pytest.fixture()
def rfb320() -> registry.Artefact:
    """The registry's real RFB-320 artefact, with no upstream URL (tests stay on loopback)."""
    return attrs.evolve(registry.get_artefact("ultraface-rfb-320-onnx"), urls=())


def _from_server(artefact: registry.Artefact, srv: MirrorServer) -> registry.Artefact:
    return attrs.evolve(artefact, urls=(srv.url + artefact.mirror_path,))


def test_fetch_from_http_mirror_verifies_and_caches(server: MirrorServer, rfb320: registry.Artefact) -> None:
    path = fetch_artefact(rfb320, mirror=server.url, progress=False, timeout=10)
    assert path == cached_path(rfb320)
    assert path.stat().st_size == rfb320.size
    assert fetch_mod._sha256(path) == rfb320.sha256
    assert not path.with_name(path.name + ".part").exists()
    assert len(server.gets(REL)) == 1
    # cache hit: no second request
    again = fetch_artefact(rfb320, mirror=server.url, progress=False)
    assert again == path
    assert len(server.gets(REL)) == 1


def test_damaged_cached_file_is_fetched_again(server: MirrorServer, rfb320: registry.Artefact) -> None:
    path = fetch_artefact(rfb320, mirror=server.url, progress=False)
    with open(path, "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    fetch_artefact(rfb320, mirror=server.url, progress=False)
    assert fetch_mod._sha256(path) == rfb320.sha256
    assert len(server.gets(REL)) == 2


def test_resume_after_interrupted_transfer(server: MirrorServer, rfb320: registry.Artefact) -> None:
    art = _from_server(rfb320, server)
    server.cuts["/" + REL] = [300_000]
    path = fetch_artefact(art, progress=False, retries=2, backoff=0.0, timeout=10)
    assert fetch_mod._sha256(path) == rfb320.sha256
    gets = server.gets(REL)
    assert len(gets) == 2
    assert gets[0]["range"] is None
    assert gets[1]["range"] == "bytes=300000-"


def test_resume_across_calls_from_part_file(server: MirrorServer, rfb320: registry.Artefact) -> None:
    art = _from_server(rfb320, server)
    server.cuts["/" + REL] = [500_000]
    with pytest.raises(DownloadError, match=r"run the command again to resume \(500,000 bytes kept"):
        fetch_artefact(art, progress=False, retries=0, timeout=10)
    part = cached_path(art).with_name(cached_path(art).name + ".part")
    assert part.stat().st_size == 500_000
    assert not cached_path(art).exists()
    path = fetch_artefact(art, progress=False, retries=0, timeout=10)
    assert fetch_mod._sha256(path) == rfb320.sha256
    assert server.gets(REL)[-1]["range"] == "bytes=500000-"


def test_server_ignoring_range_restarts_cleanly(server: MirrorServer, rfb320: registry.Artefact) -> None:
    art = _from_server(rfb320, server)
    server.cuts["/" + REL] = [200_000]
    server.ignore_range = True
    path = fetch_artefact(art, progress=False, retries=1, backoff=0.0, timeout=10)
    assert fetch_mod._sha256(path) == rfb320.sha256


def test_corrupt_file_rejected_with_expected_and_actual(
    server: MirrorServer, rfb320: registry.Artefact, models_dir: Path
) -> None:
    data = bytearray((models_dir / "ultraface/version-RFB-320.onnx").read_bytes())
    data[5000] ^= 0xFF
    server.overrides["/" + REL] = bytes(data)
    import hashlib

    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(DownloadError) as info:
        fetch_artefact(rfb320, mirror=server.url, progress=False)
    msg = str(info.value)
    assert "version-RFB-320.onnx" in msg and "corrupt" in msg
    assert rfb320.sha256 in msg and actual in msg
    target = cached_path(rfb320)
    assert not target.exists() and not target.with_name(target.name + ".part").exists()


def test_truncated_file_rejected(server: MirrorServer, rfb320: registry.Artefact, models_dir: Path) -> None:
    data = (models_dir / "ultraface/version-RFB-320.onnx").read_bytes()[:600_000]
    server.overrides["/" + REL] = data  # a consistent but short response (Content-Length 600000)
    with pytest.raises(
        DownloadError, match=r"version-RFB-320\.onnx .* truncated: expected 1,270,727 bytes, got 600,000"
    ):
        fetch_artefact(rfb320, mirror=server.url, progress=False)
    assert not cached_path(rfb320).exists()


def test_mirror_miss_falls_back_to_next_source(server: MirrorServer, rfb320: registry.Artefact) -> None:
    art = attrs.evolve(rfb320, mirror_path="models/nowhere/version-RFB-320.onnx", urls=(server.url + REL,))
    path = fetch_artefact(art, mirror=server.url, progress=False)
    assert fetch_mod._sha256(path) == rfb320.sha256
    assert [r["path"] for r in server.requests] == ["/models/nowhere/version-RFB-320.onnx", "/" + REL]


def test_every_source_failing_lists_each(server: MirrorServer, rfb320: registry.Artefact) -> None:
    art = attrs.evolve(rfb320, mirror_path="models/nowhere/x.onnx", urls=(server.url + "models/also-missing.onnx",))
    with pytest.raises(DownloadError) as info:
        fetch_artefact(art, mirror=server.url, progress=False)
    assert "HTTP 404" in str(info.value) and "also-missing" in str(info.value)


def test_concurrent_threads_produce_one_download(server: MirrorServer, rfb320: registry.Artefact) -> None:
    server.delay_per_chunk = 0.02
    results: list[Path | BaseException] = []

    def work() -> None:
        try:
            results.append(fetch_artefact(rfb320, mirror=server.url, progress=False))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, Path) for r in results), results
    assert len(results) == 3 and len(set(results)) == 1
    assert fetch_mod._sha256(results[0]) == rfb320.sha256  # type: ignore[arg-type]
    assert len(server.gets(REL)) == 1


_CHILD = """
import json, sys
from facelib.models.registry import Artefact
from facelib.models.fetch import fetch_artefact
art = Artefact(**json.loads(sys.argv[1]))
print(fetch_artefact(art, progress=False, timeout=20))
"""


def test_concurrent_processes_produce_one_correct_file(
    server: MirrorServer, rfb320: registry.Artefact, tmp_path: Path
) -> None:
    server.delay_per_chunk = 0.08  # ~1.6 s per transfer, so the two processes overlap
    art = _from_server(rfb320, server)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FACELIB_HOME": str(tmp_path / "home")}
    payload = json.dumps(attrs.asdict(art))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, payload], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    paths = {o[0].strip() for o in outs}
    assert paths == {str(cached_path(art))}
    assert fetch_mod._sha256(cached_path(art)) == rfb320.sha256
    assert len(server.gets(REL)) == 1


def test_local_directory_mirror(rfb320: registry.Artefact, shared: Path) -> None:
    path = fetch_artefact(rfb320, mirror=shared / "assets", progress=False)
    assert fetch_mod._sha256(path) == rfb320.sha256
    # file:// URLs and $FACELIB_MIRROR work the same way
    path.unlink()
    os.environ["FACELIB_MIRROR"] = (shared / "assets").as_uri()
    try:
        assert fetch_artefact(rfb320, progress=False) == path
    finally:
        del os.environ["FACELIB_MIRROR"]


def _no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise AssertionError("offline mode opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return calls


def test_offline_never_touches_the_network(
    monkeypatch: pytest.MonkeyPatch, rfb320: registry.Artefact, shared: Path
) -> None:
    art = attrs.evolve(rfb320, urls=("http://127.0.0.1:9/unused.onnx",))
    calls = _no_network(monkeypatch)
    monkeypatch.setenv("FACELIB_OFFLINE", "1")
    with pytest.raises(DownloadError) as info:
        fetch_artefact(art, mirror="http://127.0.0.1:9/", progress=False)
    msg = str(info.value)
    assert "not in the cache" in msg and "offline" in msg and art.mirror_path in msg
    assert calls == []
    # a local-directory mirror is not the network: offline still works from it
    path = fetch_artefact(art, mirror=shared / "assets", progress=False)
    assert fetch_mod._sha256(path) == rfb320.sha256
    # and then from the cache alone
    assert fetch_artefact(art, progress=False, offline=True) == path
    assert calls == []


def test_non_commercial_needs_explicit_acceptance(
    server: MirrorServer, rfb320: registry.Artefact, monkeypatch: pytest.MonkeyPatch
) -> None:
    art = attrs.evolve(rfb320, name="nc-test", non_commercial=True, licence="CC-BY-NC-4.0")
    with pytest.raises(LicenceNotAcceptedError, match=r"non-commercial licence: CC-BY-NC-4\.0"):
        fetch_artefact(art, mirror=server.url, progress=False)
    assert server.requests == []  # refused before any transfer
    messages: list[str] = []
    fetch_artefact(art, mirror=server.url, accept_licence=True, notify=messages.append)
    assert any("[NON-COMMERCIAL]" in m and "CC-BY-NC-4.0" in m for m in messages)
    cached_path(art).unlink()
    monkeypatch.setenv("FACELIB_ACCEPT_LICENCE", "other,nc-test")
    fetch_artefact(art, mirror=server.url, progress=False)


def test_unknown_checksum_needs_opt_in_and_is_recorded(server: MirrorServer, rfb320: registry.Artefact) -> None:
    art = attrs.evolve(rfb320, sha256=None, size=None)
    with pytest.raises(DownloadError, match="no published sha256"):
        fetch_artefact(art, mirror=server.url, progress=False)
    assert server.requests == []
    path = fetch_artefact(art, mirror=server.url, progress=False, allow_unverified=True)
    record = path.with_name(path.name + ".sha256").read_text()
    assert record.startswith(rfb320.sha256)  # type: ignore[arg-type]


def test_manual_artefacts_are_never_scraped(server: MirrorServer) -> None:
    art = registry.get_artefact("fomm-vox-checkpoint")
    assert art.manual and art.non_commercial
    with pytest.raises(DownloadError) as info:
        fetch_artefact(art, progress=False, accept_licence=True)
    msg = str(info.value)
    assert "by hand" in msg and str(cached_path(art)) in msg and "needs a manual download" in msg
    # from a mirror it is fetched like any other file (here the mirror lacks it: a clean 404)
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_artefact(art, mirror=server.url, progress=False, accept_licence=True)


def test_bad_mirror_setting_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="does not exist"):
        fetch_mod.resolve_mirror(tmp_path / "missing")
    with pytest.raises(DownloadError, match="only http"):
        fetch_mod.resolve_mirror("ftp://example.org/")


def test_stalled_server_times_out_and_retries(server: MirrorServer, rfb320: registry.Artefact) -> None:
    server.delay_per_chunk = 1.5  # the server stalls after each 64 KiB
    art = _from_server(rfb320, server)
    messages: list[str] = []
    with pytest.raises(DownloadError, match=r"failed after 2 attempts \(TimeoutError"):
        fetch_artefact(art, timeout=0.3, retries=1, backoff=0.0, notify=messages.append)
    assert any("retrying" in m for m in messages)
    assert len(server.gets(REL)) == 2
    part = cached_path(art).with_name(cached_path(art).name + ".part")
    assert part.stat().st_size > 0 and not cached_path(art).exists()  # kept for resuming


def test_unwritable_cache_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rfb320: registry.Artefact, shared: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("FACELIB_HOME", str(blocker / "home"))
    with pytest.raises(DownloadError, match="FACELIB_HOME"):
        fetch_artefact(rfb320, mirror=shared / "assets", progress=False)
