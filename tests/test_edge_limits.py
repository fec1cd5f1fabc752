"""The local edge bounds what one request may cost, as API Gateway and CloudFront do: bodies
are refused from their declared or running size before they are read, malformed framing is
a 400, a stalled client frees its thread, and every error the HTTP layer produces by itself
is a problem document.

Over real sockets against an Edge on 127.0.0.1 whose gateway is a stub that records what
reached it: a refused request must never reach it."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from cfnlint.decode import cfn_yaml
from chalice.local import LocalGateway

from devserver import edge as edge_module
from devserver.edge import Edge
from devserver.files import FileOrigin
from tests.conftest import Stack
from tests.test_edge import guard_limit, run_guard

ROOT = Path(__file__).resolve().parent.parent
# Bounds on waiting, so that a test of a broken edge fails instead of hanging; never an
# assertion on how fast the edge is.
CLIENT_TIMEOUT = 15.0
READ_TIMEOUT = "1"  # the edge's idle read timeout in these tests (WHARF_EDGE_READ_TIMEOUT)
GUARD_LIMIT = 4259840  # infra/template.yaml EdgeGuard MAX_API_BODY
GATEWAY_LIMIT = 10 * 1024 * 1024  # API Gateway's payload limit


@dataclass
class StubGateway:
    """Stands for chalice's LocalGateway: records each request that got through the edge."""

    received: list[tuple[str, str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        with self.lock:
            self.received.append((method, path, body))
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"received": len(body)}),
        }


@dataclass
class Running:
    address: tuple[str, int]
    gateway: StubGateway

    def paths(self) -> list[str]:
        with self.gateway.lock:
            return [path for _, path, _ in self.gateway.received]


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    gateway = StubGateway()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WHARF_EDGE_READ_TIMEOUT", READ_TIMEOUT)
        server = Edge(
            ("127.0.0.1", 0),
            cast(LocalGateway, gateway),
            cast(FileOrigin, object()),  # /files/ is not under test here
        )
    thread = threading.Thread(target=server.serve_forever, name="test-edge", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield Running((str(host), int(port)), gateway)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(CLIENT_TIMEOUT)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["Content-Type"] == "application/problem+json", self.body[:200]
        problem: dict[str, Any] = json.loads(self.body)
        assert problem["status"] == self.status
        return problem


def connect(running: Running) -> socket.socket:
    return socket.create_connection(running.address, timeout=CLIENT_TIMEOUT)


def answer(sock: socket.socket, method: str = "POST") -> Answer:
    reply = http.client.HTTPResponse(sock, method=method)
    reply.begin()
    return Answer(reply.status, reply.headers, reply.read())


def exchange(running: Running, data: bytes, method: str = "POST") -> Answer:
    """Send raw bytes on a new connection (without closing our side) and read one answer."""
    with connect(running) as sock:
        sock.sendall(data)
        return answer(sock, method)


def closed_by_edge(sock: socket.socket) -> bool:
    """Whether the edge closed the connection (after any answer it sent)."""
    try:
        while chunk := sock.recv(65536):
            del chunk
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def head(path: str, *lines: str, method: str = "POST") -> bytes:
    return "".join(
        [
            f"{method} {path} HTTP/1.1\r\n",
            "Host: 127.0.0.1\r\n",
            *(f"{x}\r\n" for x in lines),
            "\r\n",
        ]
    ).encode()


# -- chunked bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size_line",
    [b"-1", b"-0", b"+5", b"0x5", b" 5", b"5_0", b"", b"zz", b"5 5", b"1" * 17, b"f" * 40],
)
def test_a_malformed_chunk_size_is_a_400_problem(running: Running, size_line: bytes) -> None:
    with connect(running) as sock:
        sock.sendall(
            head("/upload/malformed", "Transfer-Encoding: chunked") + size_line + b"\r\nhello\r\n"
        )
        reply = answer(sock)
        assert reply.status == 400, reply.body
        assert "chunk" in reply.problem()["detail"]
        assert closed_by_edge(sock)
    assert "/upload/malformed" not in running.paths()


def test_chunk_data_must_end_where_its_size_says(running: Running) -> None:
    reply = exchange(
        running, head("/upload/overrun", "Transfer-Encoding: chunked") + b"3\r\nhello\r\n0\r\n\r\n"
    )
    assert reply.status == 400
    reply.problem()
    assert "/upload/overrun" not in running.paths()


def test_a_well_formed_chunked_body_reaches_the_app_whole(running: Running) -> None:
    body = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    with connect(running) as sock:
        sock.sendall(head("/upload/chunked", "Transfer-Encoding: chunked") + body)
        assert answer(sock).status == 200
        # The connection stays usable: the body was consumed to its last byte.
        sock.sendall(head("/upload/after", "Content-Length: 2") + b"ok")
        assert answer(sock).status == 200
    received = {path: data for _, path, data in running.gateway.received}
    assert received["/upload/chunked"] == b"hello world"
    assert received["/upload/after"] == b"ok"


@pytest.mark.parametrize(("path", "limit"), [("/legacy", GUARD_LIMIT), ("/admin/x", GATEWAY_LIMIT)])
def test_a_chunk_past_the_limit_is_refused_before_its_bytes_are_sent(
    running: Running, path: str, limit: int
) -> None:
    with connect(running) as sock:
        # Only the chunk's size line: the edge must answer without waiting for its bytes.
        sock.sendall(head(path, "Transfer-Encoding: chunked") + b"%x\r\n" % (limit + 1))
        reply = answer(sock)
        assert reply.status == 413
        assert str(limit) in reply.problem()["detail"]
        assert closed_by_edge(sock)
    assert path not in running.paths()


def test_small_chunks_are_refused_once_their_total_passes_the_limit(running: Running) -> None:
    chunk = b"x" * 65536
    with connect(running) as sock:
        sock.sendall(head("/upload/many", "Transfer-Encoding: chunked"))
        for _ in range(GUARD_LIMIT // len(chunk)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # Exactly at the limit so far; one more byte passes it, and the edge says so at once.
        sock.sendall(b"1\r\n")
        reply = answer(sock)
        assert reply.status == 413
        reply.problem()
    assert "/upload/many" not in running.paths()


# -- declared lengths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/legacy", GUARD_LIMIT),
        ("/upload/s/files/f/content", GUARD_LIMIT),
        ("/admin/x", GATEWAY_LIMIT),
    ],
)
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    running: Running, path: str, limit: int
) -> None:
    with connect(running) as sock:
        # Only the head (of a 60 MiB legacy form, say): nothing of the body has been sent.
        sock.sendall(head(path, f"Content-Length: {limit + 1}"))
        reply = answer(sock)
        assert reply.status == 413
        assert reply.headers["Cache-Control"] == "no-store"
        assert str(limit) in reply.problem()["detail"]
    assert path not in running.paths()


def test_a_body_at_the_limit_reaches_the_app(running: Running) -> None:
    reply = exchange(
        running,
        head("/legacy", f"Content-Length: {GUARD_LIMIT}", "Content-Type: multipart/form-data")
        + b"x" * GUARD_LIMIT,
    )
    assert (reply.status, json.loads(reply.body)) == (200, {"received": GUARD_LIMIT})


def test_a_client_that_sends_its_whole_body_still_reads_the_413(running: Running) -> None:
    """Like twine: no Expect, the whole (too large) body sent before reading the answer. The
    edge drains what it refused instead of resetting the connection under the client."""
    connection = http.client.HTTPConnection(*running.address, timeout=CLIENT_TIMEOUT)
    try:
        connection.request(
            "POST",
            "/legacy",
            body=b"x" * (2 * GUARD_LIMIT),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        reply = connection.getresponse()
        problem = json.loads(reply.read())
    finally:
        connection.close()
    assert reply.status == 413 and problem["status"] == 413
    assert "vnd-wharf-s3multipart-presigned-v1" in problem["detail"]


def test_expect_100_continue_gets_the_413_instead_of_a_go_ahead(running: Running) -> None:
    with connect(running) as sock:
        sock.sendall(head("/legacy", f"Content-Length: {GUARD_LIMIT + 1}", "Expect: 100-continue"))
        status_line = sock.makefile("rb").readline()
    assert status_line.split()[1] == b"413"


def test_a_body_that_ends_early_is_a_400_not_a_truncated_request(running: Running) -> None:
    with connect(running) as sock:
        sock.sendall(head("/upload/short", "Content-Length: 10") + b"abc")
        sock.shutdown(socket.SHUT_WR)
        reply = answer(sock)
    assert reply.status == 400
    reply.problem()
    assert "/upload/short" not in running.paths()


@pytest.mark.parametrize(
    "lines",
    [
        ("Content-Length: 5", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: 5"),
        ("Content-Length: 5", "Content-Length: 6"),
        ("Content-Length: 5, 6",),
        ("Content-Length: +5",),
        ("Content-Length: -5",),
        ("Content-Length: 5_0",),
        ("Content-Length: 0x5",),
        ("X-Before: 1", "Content-Length : 5"),  # hides the length from a lenient parser
        ("X-Folded: a", " b", "Content-Length: 5"),  # obsolete line folding
    ],
)
def test_ambiguous_framing_is_refused(running: Running, lines: tuple[str, ...]) -> None:
    """Request smuggling: a request whose length two parsers could read differently."""
    with connect(running) as sock:
        sock.sendall(head("/upload/smuggled", *lines) + b"5\r\nhello\r\n0\r\n\r\n")
        reply = answer(sock)
        assert reply.status == 400, lines
        reply.problem()
        assert closed_by_edge(sock)
    assert "/upload/smuggled" not in running.paths()


@pytest.mark.parametrize("coding", ["gzip", "gzip, chunked", "chunked, chunked", "identity"])
def test_a_transfer_coding_other_than_chunked_is_a_501_problem(
    running: Running, coding: str
) -> None:
    reply = exchange(running, head("/upload/coded", f"Transfer-Encoding: {coding}") + b"0\r\n\r\n")
    assert reply.status == 501
    reply.problem()
    assert "/upload/coded" not in running.paths()


# -- time -------------------------------------------------------------------------------------


def test_a_stalled_body_frees_its_thread_with_a_408(running: Running) -> None:
    with connect(running) as sock:
        sock.sendall(head("/upload/stalled", "Content-Length: 10") + b"abc")
        reply = answer(sock)  # ... and nothing more is sent
        assert reply.status == 408
        reply.problem()
        assert closed_by_edge(sock)
    assert "/upload/stalled" not in running.paths()


def test_an_idle_connection_is_closed(running: Running) -> None:
    with connect(running) as sock:
        sock.sendall(head("/upload/first", "Content-Length: 0"))
        assert answer(sock).status == 200
        assert closed_by_edge(sock)  # keep-alive, then silence


def test_a_stalled_head_is_closed(running: Running) -> None:
    with connect(running) as sock:
        sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert closed_by_edge(sock)


def test_the_read_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHARF_EDGE_READ_TIMEOUT", "7.5")
    configured = Edge(("127.0.0.1", 0), cast(LocalGateway, None), cast(FileOrigin, None))
    monkeypatch.delenv("WHARF_EDGE_READ_TIMEOUT")
    default = Edge(("127.0.0.1", 0), cast(LocalGateway, None), cast(FileOrigin, None))
    try:
        assert configured.read_timeout == 7.5
        assert default.read_timeout == 30
    finally:
        configured.server_close()
        default.server_close()


# -- errors the HTTP layer produces by itself -------------------------------------------------


@pytest.mark.parametrize("method", ["PROPFIND", "BREW", "G@T", "get"])
def test_an_unknown_method_is_a_501_problem(running: Running, method: str) -> None:
    reply = exchange(running, head("/simple/", method=method), method=method)
    assert reply.status == 501
    assert method in reply.problem()["detail"]


@pytest.mark.parametrize("method", ["TRACE", "CONNECT"])
def test_a_known_method_the_edge_refuses_is_a_405_problem(running: Running, method: str) -> None:
    reply = exchange(running, head("/simple/", method=method), method=method)
    assert reply.status == 405
    reply.problem()
    assert "GET" in reply.headers["Allow"] and method not in reply.headers["Allow"]


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET / HTTP/x.y", 400),
        (b"GET / FTP/1.1", 400),
        (b"GET / HTTP/1.1 extra", 400),
        (b"GET / HTTP/2.0", 505),
        (b"GET /", 400),  # HTTP/0.9, which neither CloudFront nor API Gateway speaks
        (b"POST /", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1", 414),
    ],
)
def test_a_malformed_request_line_is_a_problem(
    running: Running, request_line: bytes, status: int
) -> None:
    reply = exchange(running, request_line + b"\r\n\r\n", method="GET")
    assert reply.status == status
    reply.problem()


def test_too_many_headers_are_a_431_problem(running: Running) -> None:
    lines = [f"X-Header-{n}: {n}" for n in range(101)]
    reply = exchange(running, head("/simple/", *lines, method="GET"), method="GET")
    assert reply.status == 431
    reply.problem()


def test_a_head_larger_than_cloudfront_takes_is_a_431_problem(running: Running) -> None:
    # Every line is short; only the total is too large.
    lines = [f"X-Header-{n}: {'v' * 400}" for n in range(60)]
    reply = exchange(running, head("/simple/", *lines, method="GET"), method="GET")
    assert reply.status == 431
    reply.problem()


def test_a_problem_to_head_has_no_body(running: Running) -> None:
    lines = [f"X-Header-{n}: {n}" for n in range(101)]
    reply = exchange(running, head("/simple/", *lines, method="HEAD"), method="HEAD")
    assert (reply.status, reply.headers["Content-Type"]) == (431, "application/problem+json")
    assert reply.body == b""


# -- the same answer as the deployed edge -----------------------------------------------------


@pytest.fixture(scope="module")
def guard_code() -> str:
    template = cfn_yaml.load(str(ROOT / "infra" / "template.yaml"))
    code: str = template["Resources"]["EdgeGuard"]["Properties"]["FunctionCode"]
    return code


def test_the_limit_is_the_deployed_guards(guard_code: str) -> None:
    assert edge_module.MAX_API_BODY == guard_limit(guard_code) == GUARD_LIMIT


def test_the_413_is_the_one_the_deployed_guard_sends(running: Running, guard_code: str) -> None:
    for path in ("/legacy", "/upload/s/files/f/content"):
        size = str(GUARD_LIMIT + 1)
        guard = run_guard(guard_code, path, {"content-length": size})
        local = exchange(running, head(path, f"Content-Length: {size}"))
        assert local.status == guard["statusCode"] == 413
        for name, value in guard["headers"].items():
            assert local.headers[name] == value["value"], name
        assert local.problem() == json.loads(guard["body"]["data"])


# -- the stack `make run` starts ----------------------------------------------------------------


def test_the_local_stack_refuses_a_large_legacy_form_and_unknown_methods(stack: Stack) -> None:
    host, port = stack.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(head("/legacy", f"Content-Length: {60 * 1024 * 1024}"))
        reply = answer(sock)
    assert reply.status == 413
    assert "vnd-wharf-s3multipart-presigned-v1" in reply.problem()["detail"]
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(head("/simple/", method="PROPFIND"))
        assert answer(sock).problem()["status"] == 501
