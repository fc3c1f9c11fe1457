"""A loopback HTTP server for image folders, for tests and the demo (never for production).

    with serve_folder(folder) as base_url:      # "http://127.0.0.1:<port>"
        urls = [f"{base_url}/{name}" for name in names]

Files under `folder` are served as-is, threaded, on 127.0.0.1 with no request logging, on
`port` (default 0: an OS-chosen free port; a fixed one raises OSError when it is taken).
`routes` adds fault paths that answer what a real web would: a `Route(status=404)`, a
non-image body, a slow answer, an `X-Robots-Tag: noai` header, a redirect
(`Route(status=302, headers=(("Location", "/x"),))`), or a connection reset by the peer
(`Route(reset=True)`: a TCP RST instead of any answer).
The server stops when the `with` block ends, even on an exception.
"""

from __future__ import annotations

import functools
import http.server
import socket
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Route:
    """A fixed answer for one path (e.g. "/gone.jpg"): status, body, extra headers, delay;
    or, with `reset`, no answer at all but a TCP reset after the delay."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    delay_s: float = 0.0
    reset: bool = False


class _Handler(http.server.SimpleHTTPRequestHandler):
    routes: Mapping[str, Route] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        route = self.routes.get(self.path.split("?", 1)[0])
        if route is None:
            super().do_GET()
            return
        if route.delay_s:
            time.sleep(route.delay_s)
        if route.reset:  # SO_LINGER with a zero timeout: close() sends RST, not FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        try:
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            for name, value in route.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(route.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        """Quiet: a test run should not print one line per image."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A crawl opens processes x threads connections at once. socketserver's listen backlog
    # of 5 makes the kernel drop SYNs while the accept thread waits for the GIL; each drop
    # stalls that request >= 1 s (SYN retransmit), which is timing noise and, under load,
    # spurious "timed out" rows.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early (timeouts) are expected; no traceback on stderr."""


@contextmanager
def serve_folder(
    folder: str | Path, routes: Mapping[str, Route] | None = None, port: int = 0
) -> Iterator[str]:
    """Serve `folder` (and `routes`) on loopback `port` (0: any free one); yield the base url
    without a trailing slash."""
    handler = type("Handler", (_Handler,), {"routes": dict(routes or {})})
    server = _Server(("127.0.0.1", port), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, name="serve_folder", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
