"""A real HTTP mirror on 127.0.0.1 for the model-hub tests (standard library only).

Serves a directory (``../shared/assets``) with HTTP ``Range`` support and switchable faults:
cut the connection mid-file, serve other bytes for a path (corrupt / truncated files), ignore
ranges, throttle.  Every request is logged.  The server stops by itself: after ``max_requests``
requests or ``lifetime`` seconds, whichever comes first, and when the ``with`` block ends.
"""

from __future__ import annotations

import posixpath
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class MirrorServer:
    """``with MirrorServer(root) as srv: srv.url`` -> ``http://127.0.0.1:PORT/``."""

    def __init__(self, root: Path, *, max_requests: int = 200, lifetime: float = 120.0) -> None:
        self.root = Path(root).resolve()
        self.max_requests = max_requests
        self.lifetime = lifetime
        self.requests: list[dict[str, Any]] = []
        self.overrides: dict[str, bytes] = {}  # url path -> bytes served instead of the file
        self.cuts: dict[str, list[int]] = {}  # url path -> byte counts after which to cut, one per request
        self.ignore_range = False
        self.delay_per_chunk = 0.0  # seconds slept after each 64 KiB chunk
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def gets(self, path: str) -> list[dict[str, Any]]:
        """Requests for ``path`` (relative, e.g. ``models/x.onnx``)."""
        return [r for r in self.requests if r["path"] == "/" + path.lstrip("/")]

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def start(self) -> MirrorServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)
            over = len(self.requests) == self.max_requests
        if over:  # bounded: shut down from another thread (shutdown() blocks until serve_forever exits)
            threading.Thread(target=self._server.shutdown, daemon=True).start()


def _make_handler(srv: MirrorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            path = urllib.parse.unquote(urllib.parse.urlparse(self.path).path)
            rng = self.headers.get("Range")
            srv._record({"path": path, "range": rng, "time": time.monotonic()})
            data = srv.overrides.get(path)
            if data is None:
                rel = posixpath.normpath(path).lstrip("/")
                file = (srv.root / rel).resolve()
                if rel.startswith("..") or not file.is_relative_to(srv.root) or not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
            start = 0
            status = 200
            if rng and not srv.ignore_range:
                spec = rng.removeprefix("bytes=").split("-", 1)[0]
                start = int(spec)
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cuts = srv.cuts.get(path)
            limit = cuts.pop(0) if cuts else None
            sent = 0
            try:
                for i in range(0, len(body), 1 << 16):
                    chunk = body[i : i + (1 << 16)]
                    if limit is not None and sent + len(chunk) > limit:
                        self.wfile.write(chunk[: limit - sent])
                        self.wfile.flush()
                        self.close_connection = True
                        return  # HTTP/1.0: returning closes the socket mid-body
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if srv.delay_per_chunk:
                        time.sleep(srv.delay_per_chunk)
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler
