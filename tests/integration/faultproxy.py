"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the moto S3 server (tests only).

Every request is forwarded to the upstream server unchanged (Host header included, so
SigV4 signatures still match); a test-set ``rule(method, path, count)`` picks what
happens to each response:

- ``PASS``: forwarded as is;
- ``Status(503)``: an S3-style error answer instead of forwarding;
- ``DROP``: the connection is closed without an answer;
- ``Short(n, keep_length=False, checksums=False)``: the body loses its last ``n`` bytes;
  ``keep_length`` keeps the original Content-Length (the connection is then closed, a
  cut-off body), otherwise Content-Length is rewritten (a short body that looks whole);
  ``checksums=False`` strips the ``x-amz-checksum-*`` headers (a store without them);
- ``Flip(checksums=False, multipart_etag=False)``: the body keeps its length but its last
  byte is flipped (in a Blosc-LZ4 chunk a literal: it decodes into one wrong value);
  ``checksums`` as for ``Short``; ``multipart_etag`` rewrites the ETag as a multipart
  upload's (``"<md5>-2"``, no MD5 of the bytes), so no digest covers the body.
- ``Delay(s)``: the request waits ``s`` seconds before it is forwarded (a slow write);
- ``LOSE``: the request is forwarded (and done by the server), then the connection is
  closed without an answer (a lost response).

:meth:`FaultProxy.outage` takes the proxy down for some seconds (new connections are
refused, open ones dropped), then brings it back on the same port. The proxy stops by
itself after ``lifetime_s`` (a test that hangs cannot leave it running) and on exit.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


@dataclass(frozen=True)
class Status:
    code: int


@dataclass(frozen=True)
class Short:
    n: int
    keep_length: bool = False
    checksums: bool = False


@dataclass(frozen=True)
class Flip:
    checksums: bool = False
    multipart_etag: bool = False


@dataclass(frozen=True)
class Delay:
    seconds: float


PASS = "pass"
DROP = "drop"
LOSE = "lose"
Rule = Callable[[str, str, int], Any]


class FaultProxy:
    """The proxy: ``url`` to use as ``endpoint_url``; ``rule`` and counters set by tests."""

    def __init__(self, upstream: str, lifetime_s: float = 240.0) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.rule: Rule = lambda method, path, count: PASS
        self.counts: dict[tuple[str, str], int] = {}
        #: Body bytes sent back per path, GET requests only.
        self.sent: dict[str, int] = {}
        self.injected: dict[str, int] = {}
        self.lock = threading.Lock()
        self.down = False
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadingHTTPServer | None = None
        self._start()
        self._deadline = threading.Timer(lifetime_s, self.stop)
        self._deadline.daemon = True
        self._deadline.start()

    # -- lifecycle ---------------------------------------------------------------------
    def _start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        for _ in range(50):  # the port may linger briefly after an outage
            try:
                server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"fault proxy could not bind port {self.port}")
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self._deadline.cancel()
        self._shutdown()

    def outage(self, seconds: float) -> None:
        """Refuse new connections and drop open ones for ``seconds`` (blocks)."""
        with self.lock:
            self.down = True
            self.injected["outage"] = self.injected.get("outage", 0) + 1
        self._shutdown()
        time.sleep(seconds)
        self._start()
        with self.lock:
            self.down = False

    def outage_in_background(self, seconds: float) -> threading.Thread:
        thread = threading.Thread(target=self.outage, args=(seconds,), daemon=True)
        thread.start()
        return thread

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- one request -------------------------------------------------------------------
    def _count(self, method: str, path: str) -> int:
        with self.lock:
            n = self.counts.get((method, path), 0) + 1
            self.counts[(method, path)] = n
            return n

    def _note(self, what: str) -> None:
        with self.lock:
            self.injected[what] = self.injected.get(what, 0) + 1

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        body = _read_body(req)
        if self.down:
            req.close_connection = True
            return
        path = req.path.split("?", 1)[0]
        action = self.rule(req.command, path, self._count(req.command, path))
        if action == DROP:
            self._note("drop")
            req.close_connection = True
            return
        if isinstance(action, Status):
            self._note(f"status-{action.code}")
            payload = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
                + {503: b"SlowDown", 501: b"NotImplemented"}.get(action.code, b"InternalError")
                + b"</Code><Message>injected</Message></Error>"
            )
            req.send_response(action.code)
            req.send_header("Content-Type", "application/xml")
            req.send_header("Content-Length", str(len(payload)))
            req.end_headers()
            req.wfile.write(payload)
            return
        if isinstance(action, Delay):
            self._note("delay")
            time.sleep(action.seconds)
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP}
            if body or req.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(req.command, req.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP]
        finally:
            conn.close()
        if action == LOSE:
            self._note("lose")
            req.close_connection = True
            return
        # a HEAD answer has no body: its Content-Length is the object's size
        length = int(resp.getheader("Content-Length") or 0) if req.command == "HEAD" else len(data)
        if isinstance(action, Short) and req.command == "GET" and len(data) > action.n:
            self._note("short-keep-length" if action.keep_length else "short")
            data = data[: len(data) - action.n]
            if not action.keep_length:
                length = len(data)
            if not action.checksums:
                out_headers = [
                    (k, v) for k, v in out_headers if not k.lower().startswith("x-amz-checksum")
                ]
            else:
                self._note("short-with-checksum")
        if isinstance(action, Flip) and req.command == "GET" and resp.status == 200 and data:
            self._note("flip")
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
            out_headers = _without_digests(out_headers, action.checksums, action.multipart_etag)
        elif isinstance(action, Flip) and req.command == "HEAD":
            out_headers = _without_digests(out_headers, action.checksums, action.multipart_etag)
        req.send_response(resp.status)
        for key, value in out_headers:
            req.send_header(key, value)
        req.send_header("Content-Length", str(length))
        if isinstance(action, Short) and action.keep_length:
            req.send_header("Connection", "close")
            req.close_connection = True
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(data)
        if req.command == "GET":
            with self.lock:
                self.sent[path] = self.sent.get(path, 0) + len(data)


def _without_digests(
    headers: list[tuple[str, str]], checksums: bool, multipart_etag: bool
) -> list[tuple[str, str]]:
    """``headers`` without checksum headers (unless ``checksums``), the ETag made multipart."""
    out = []
    for key, value in headers:
        if not checksums and key.lower().startswith("x-amz-checksum"):
            continue
        if multipart_etag and key.lower() == "etag":
            value = '"' + value.strip('"') + '-2"'
        out.append((key, value))
    return out


def _read_body(req: BaseHTTPRequestHandler) -> bytes:
    """The request body (Content-Length or chunked)."""
    if req.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        for _ in range(1_000_000):  # bounded
            size = int(req.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                req.rfile.readline()
                break
            chunks.append(req.rfile.read(size))
            req.rfile.readline()
        return b"".join(chunks)
    length = int(req.headers.get("Content-Length") or 0)
    return req.rfile.read(length) if length else b""
