"""The local HTTP edge: what API Gateway (and later CloudFront) do in AWS.

API paths go to the Chalice app in-process through chalice's LocalGateway, from a pool
of threads so that publishers and readers are served concurrently. A client that
disconnects mid-request costs only its own thread.

Like AWS, the edge bounds what one request may cost before the app sees it: a body over
the API's limit is refused from its Content-Length (or its running chunked total) before
it is read, a silent connection is closed after a read timeout, ambiguous framing is
refused, and every error, the HTTP layer's own included, is a problem document."""

from __future__ import annotations

import base64
import http.client
import logging
import os
import re
import socket
import time
from email.errors import MissingHeaderBodySeparatorDefect
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalice.local import LocalGateway, LocalGatewayException

from chalicelib.domain.errors import WharfError
from chalicelib.http.problems import PROBLEM_JSON, Problem, problem_for, problem_for_status

from .files import FileOrigin, NotServed

_log = logging.getLogger("wharf.edge")

# -- the bounds AWS puts on one request, mirrored so that what works here works there -------

# infra/template.yaml's EdgeGuard (a CloudFront function) refuses larger /upload/ and
# /legacy bodies: WHARF_POST_BYTES_MAX plus a legacy form's fields, which still fits
# Lambda's 6 MB event once base64-encoded. tests/test_edge_limits.py holds them equal.
MAX_API_BODY = 4259840
_GUARDED = re.compile(r"/(upload/|legacy)")
_LARGE_FILES = "vnd-wharf-s3multipart-presigned-v1"
# API Gateway refuses any other payload over 10 MB.
MAX_BODY = 10 * 1024 * 1024
# CloudFront's limits on a request's URL, and on its request line and headers together.
# (http.client bounds the number of header lines at 100, and each line at 64 KiB.)
MAX_REQUEST_LINE = 8192
MAX_HEAD = 20480
# A chunk-size line (with any chunk extensions) or a trailer line; and how many trailers.
MAX_CHUNK_LINE = 4096
MAX_TRAILERS = 32
# A connection that sends nothing for this long (between requests, or in the middle of
# one) is closed, freeing its thread. About what API Gateway gives a whole request (29 s),
# and far longer than any real client pauses between two writes.
# WHARF_EDGE_READ_TIMEOUT overrides it (tests use a short one).
READ_TIMEOUT = 30.0
# After refusing a request whose body was not read, how long the edge keeps discarding what
# the client still sends before closing. Closing with unread bytes makes the kernel reset
# the connection, and a client still sending its body (twine sends the whole form before
# reading) would see the reset instead of the 413 (nginx's "lingering close").
LINGER_SECONDS = 5.0

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
_DIGITS = re.compile(r"[0-9]{1,19}")
# A chunk size is hex digits (16 at most: larger cannot be a length), then optional
# extensions, then CRLF. No sign, no 0x, no underscores, no leading space: what int()
# would also accept is exactly what lets two parsers disagree on where a body ends.
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r\n")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ALLOW = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


def too_large(path: str) -> tuple[int, Problem]:
    """The body limit for a path, and the error that refuses a body over it."""
    if _GUARDED.match(path.split("?", 1)[0]):
        # Word for word what the deployed guard sends (tests compare them).
        detail = (
            f"The API takes request bodies up to {MAX_API_BODY} bytes. Upload larger files "
            f"with the Upload 2.0 API's {_LARGE_FILES} mechanism (`wharf upload`), which "
            "sends the bytes straight to storage."
        )
        limit = MAX_API_BODY
    else:
        detail = f"The API takes request bodies up to {MAX_BODY} bytes."
        limit = MAX_BODY
    return limit, problem_for_status(413, detail, {"Cache-Control": "no-store"})


class _Refused(Exception):
    """A request the edge answers itself, without (all of) its body having been read."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def _bad(detail: str) -> _Refused:
    """A malformed request, refused with a 400 problem."""
    return _Refused(problem_for_status(400, detail))


class _HeadReader:
    """The connection's reader while the headers are parsed: refuses a head larger than
    MAX_HEAD in total as http.client refuses one long line (the stdlib then answers 431)."""

    def __init__(self, rfile: Any, budget: int) -> None:
        self._rfile = rfile
        self._budget = budget

    def readline(self, limit: int = -1) -> bytes:
        allowed = self._budget + 1 if limit < 0 else min(limit, self._budget + 1)
        line: bytes = self._rfile.readline(allowed)
        self._budget -= len(line)
        if self._budget < 0:
            raise http.client.LineTooLong(f"request head over {MAX_HEAD} bytes")
        return line


class Edge(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when publishers upload in
    # parallel or a CI matrix creates sessions at once.
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        gateway: LocalGateway,
        files: FileOrigin,
        read_timeout: float | None = None,
    ) -> None:
        super().__init__(address, EdgeHandler)
        self.gateway = gateway
        self.files = files
        self.read_timeout = (
            read_timeout
            if read_timeout is not None
            else float(os.environ.get("WHARF_EDGE_READ_TIMEOUT") or READ_TIMEOUT)
        )


class EdgeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body of an answer are two writes: with Nagle's algorithm the
    # second waits for the client's delayed ACK (~40 ms) on every kept-alive request.
    disable_nagle_algorithm = True
    server: Edge
    raw_requestline: bytes  # set by handle_one_request (untyped in typeshed)

    def setup(self) -> None:
        super().setup()
        # Every read and write of this connection: a silent client frees its thread.
        self.connection.settimeout(self.server.read_timeout)

    def log_message(self, format: str, *args: Any) -> None:
        _log.info("%s %s", self.address_string(), format % args)

    # -- the request head ----------------------------------------------------------------

    def parse_request(self) -> bool:
        # What the stdlib sets first, for the refusals below.
        self.command, self.request_version = "", self.default_request_version
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.send_error(
                HTTPStatus.REQUEST_URI_TOO_LONG, f"A URL is at most {MAX_REQUEST_LINE} bytes."
            )
            return False
        if len(self.raw_requestline.split()) == 2:
            # HTTP/0.9 (no version, no headers): neither CloudFront nor API Gateway speaks
            # it, and the stdlib would wait for headers such a client never sends.
            self.send_error(HTTPStatus.BAD_REQUEST, "The request line lacks an HTTP version.")
            return False
        rfile, budget = self.rfile, MAX_HEAD - len(self.raw_requestline)
        self.rfile = _HeadReader(rfile, budget)  # type: ignore[assignment]
        try:
            return super().parse_request()
        finally:
            self.rfile = rfile

    def handle_expect_100(self) -> bool:
        # Checked before the stdlib tells the client to go ahead and send the body.
        try:
            self._check_head()
        except _Refused as refused:
            self._refuse(refused.problem)
            return False
        return super().handle_expect_100()

    def _check_head(self) -> tuple[bool, int]:
        """Whether the body is chunked, else its length; refuses what AWS would refuse, and
        any head that two HTTP parsers could read differently (request smuggling)."""
        self._check_header_lines()
        codings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if codings and lengths:
            raise _bad("A request has Content-Length or Transfer-Encoding, not both.")
        limit, refusal = too_large(self.path)
        if codings:
            self._check_chunked(codings)
            return True, 0
        if not lengths:
            return False, 0
        length = self._content_length(lengths)
        if length > limit:
            raise _Refused(refusal)
        return False, length

    def _check_header_lines(self) -> None:
        """Every line of the head is a header, named by a token, not folded."""
        headers = self.headers
        if headers.get_payload() or any(
            isinstance(d, MissingHeaderBodySeparatorDefect) for d in headers.defects
        ):
            # A line that is not a header ends http.client's parsing early: what follows it
            # (a Content-Length, say) would be silently taken for the body. (Other defects
            # are about a multipart Content-Type's parameters, not the head.)
            raise _bad("The request has a malformed header line.")
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name) or "\r" in value or "\n" in value:
                raise _bad("The request has a malformed or folded header.")

    def _check_chunked(self, codings: list[str]) -> None:
        """Transfer-Encoding says chunked and nothing else, on HTTP/1.1."""
        if [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
            raise _Refused(
                problem_for_status(501, "The only transfer coding requests may use is chunked.")
            )
        if self.request_version == "HTTP/1.0":
            raise _bad("HTTP/1.0 has no chunked transfer coding.")

    @staticmethod
    def _content_length(lengths: list[str]) -> int:
        """The length the Content-Length headers give: one value (however often repeated),
        digits only."""
        values = {v.strip() for v in ",".join(lengths).split(",")}
        if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values))):
            raise _bad("The request's Content-Length is invalid.")
        return int(values.pop())

    # -- methods ---------------------------------------------------------------------------

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

    def do_TRACE(self) -> None:
        self._refuse(
            problem_for_status(405, f"The API does not serve {self.command}.", {"Allow": _ALLOW})
        )

    do_CONNECT = do_TRACE

    # -- the body --------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        chunked, length = self._check_head()
        if chunked:
            return self._read_chunked()
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise _bad("The request body ended before its Content-Length.")
        return body

    def _read_chunked(self) -> bytes:
        """RFC 9112 section 7.1, strictly, never holding more than the body limit."""
        limit, refusal = too_large(self.path)
        body = bytearray()
        while True:
            match = _CHUNK_SIZE.fullmatch(self._chunk_line())
            if match is None:
                raise _bad("The request has a malformed chunk size line.")
            size = int(match[1], 16)
            if size == 0:
                break
            if len(body) + size > limit:
                raise _Refused(refusal)  # before the chunk's bytes are read
            data = self.rfile.read(size)
            if len(data) < size:
                raise _bad("The request body ended inside a chunk.")
            body += data
            if self.rfile.read(2) != b"\r\n":
                raise _bad("A chunk is longer than its chunk size says.")
        for _ in range(MAX_TRAILERS + 1):
            line = self._chunk_line()
            if line == b"\r\n":
                return bytes(body)
            if not line.endswith(b"\r\n") or b":" not in line:
                raise _bad("The request has a malformed chunk trailer.")
        raise _bad(f"A request has at most {MAX_TRAILERS} trailer fields.")

    def _chunk_line(self) -> bytes:
        line: bytes = self.rfile.readline(MAX_CHUNK_LINE + 1)
        if len(line) > MAX_CHUNK_LINE:
            raise _bad(f"The request has a chunk line over {MAX_CHUNK_LINE} bytes.")
        if not line.endswith(b"\n"):
            raise _bad("The request body ended inside a chunk line.")
        return line

    def _dispatch(self) -> None:
        try:
            try:
                body = self._read_body()
            except _Refused as refused:
                self._refuse(refused.problem)
                return
            except TimeoutError:
                # The client stalled mid-body: answer (if it still listens) and free the thread.
                self.close_connection = True
                self._problem(
                    problem_for_status(408, f"No request bytes for {self.server.read_timeout:g} s.")
                )
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
            self._problem(problem_for_status(500, "The local edge failed; see its log."))

    # -- answers the edge makes itself -----------------------------------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error the stdlib answers by itself (a malformed request line, an unknown
        method, too many headers) as a problem, like every other error of Wharf's."""
        self.log_error("code %d, message %s", code, message)
        if self.request_version == "HTTP/0.9":
            # The stdlib's default until a version is parsed; it would suppress the status
            # line and the headers, leaving a bare body no client can tell apart.
            self.request_version = "HTTP/1.0"
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self._refuse(problem_for_status(code, message or phrase))

    def _refuse(self, problem: Problem) -> None:
        """Answer a request whose body is left unread, then close the connection: the
        unread bytes cannot be told from a next request."""
        self.close_connection = True
        try:
            self._problem(problem)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(min(left, self.server.read_timeout))
                if not self.connection.recv(65536):
                    break
        except OSError:
            pass  # the client left (or stalled): nothing more is owed to it

    def _to_files(self) -> None:
        """What CloudFront does for /files/* in AWS (from S3, Range at the edge)."""
        if self.command not in ("GET", "HEAD"):
            self._problem(
                problem_for_status(405, "Files are read with GET or HEAD.", {"Allow": "GET, HEAD"})
            )
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.files.reply(self.command, self.path, headers)
        except NotServed:
            self._problem(problem_for_status(404, "No published file at this URL."))
            return
        except WharfError as exc:  # S3 failed behind the edge (BadGateway)
            self._problem(problem_for(exc, None))
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
            self._problem(problem_for_status(404, f"Nothing here: {self.path.split('?')[0]}"))
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

    def _problem(self, problem: Problem) -> None:
        self._send(
            problem.status,
            [("Content-Type", PROBLEM_JSON), *problem.headers.items()],
            problem.encode(),
        )

    def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(payload)
