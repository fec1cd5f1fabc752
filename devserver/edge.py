"""The local HTTP edge: what API Gateway (and later CloudFront) do in AWS.

API paths go to the Chalice app in-process through chalice's LocalGateway, from a pool
of threads so that publishers and readers are served concurrently. A client that
disconnects mid-request costs only its own thread."""

from __future__ import annotations

import base64
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalice.local import LocalGateway, LocalGatewayException

from chalicelib.errors import ContentTooLarge, MethodNotAllowed, NotFound, WharfError
from chalicelib.http import PROBLEM_JSON

from .files import FileOrigin, NotServed

_log = logging.getLogger("wharf.edge")
# Far above anything the API accepts (http-post-bytes is capped lower), so a hostile
# client cannot make the edge buffer unbounded bodies.
MAX_BODY = 64 * 1024 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class Edge(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when publishers upload in
    # parallel or a CI matrix creates sessions at once.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], gateway: LocalGateway, files: FileOrigin) -> None:
        super().__init__(address, EdgeHandler)
        self.gateway = gateway
        self.files = files


class EdgeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Edge

    def log_message(self, format: str, *args: Any) -> None:
        _log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ContentTooLarge(f"Request bodies are at most {MAX_BODY} bytes.")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ContentTooLarge(f"Request bodies are at most {MAX_BODY} bytes.")
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        try:
            try:
                body = self._read_body()
            except ValueError:
                self.close_connection = True
                self._problem(WharfError("The request framing is invalid."), status=400)
                return
            except WharfError as exc:
                self.close_connection = True
                self._problem(exc)
                return
            if self.path.startswith("/files/"):
                self._to_files()
            else:
                self._to_app(body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception:
            # The edge's own failure: a 500 problem, never a dropped connection.
            _log.exception("edge failed on %s %s", self.command, self.path)
            self.close_connection = True
            self._problem(WharfError("The local edge failed; see its log."))

    def _to_files(self) -> None:
        """What CloudFront does for /files/* in AWS (from S3, Range at the edge)."""
        if self.command not in ("GET", "HEAD"):
            self._problem(
                MethodNotAllowed("Files are read with GET or HEAD.", headers={"Allow": "GET, HEAD"})
            )
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.files.reply(self.command, self.path, headers)
        except NotServed:
            self._problem(NotFound("No published file at this URL."))
            return
        except WharfError as exc:
            self._problem(exc)
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            for chunk in reply.body or ():
                self.wfile.write(chunk)
        finally:
            reply.close()  # S3's response is released at once, even if the client left

    def _to_app(self, body: bytes) -> None:
        method = "GET" if self.command == "HEAD" else self.command
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = self.server.gateway.handle_request(
                method=method, path=self.path, headers=headers, body=body
            )
        except LocalGatewayException:
            # An unknown path: API Gateway says 403 "Missing Authentication Token";
            # behind Wharf's edge it is a plain 404 problem.
            self._problem(NotFound(f"Nothing here: {self.path.split('?')[0]}"))
            return
        payload = response.get("body") or b""
        if response.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        elif isinstance(payload, str):
            payload = payload.encode("utf-8")
        out: list[tuple[str, str]] = []
        for name, value in (response.get("headers") or {}).items():
            if name.lower() not in _HOP_BY_HOP:
                out.append((name, value))
        for name, values in (response.get("multiValueHeaders") or {}).items():
            if name.lower() not in _HOP_BY_HOP:
                out.extend((name, v) for v in values)
        self._send(int(response["statusCode"]), out, payload)

    def _problem(self, error: WharfError, status: int | None = None) -> None:
        problem = error.problem()
        if status is not None:
            problem["status"] = status
        self._send(
            problem["status"],
            [("Content-Type", PROBLEM_JSON), *error.headers.items()],
            json.dumps(problem).encode(),
        )

    def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(payload)
