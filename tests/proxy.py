"""A TCP proxy on loopback that records what crosses it and can cut a transfer short:
how the tests watch real installers and upload clients talk to the local stack.

It reads HTTP/1.1 as it relays it (request and response framing: Content-Length,
chunked, until-close), so that it knows which response answers which request, and where
a request's body is, however the bytes happen to arrive in recv()s."""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import TracebackType

# Body framings a head announces, besides a length (>= 0).
CHUNKED = -1
UNTIL_CLOSE = -2
# Past this, a "head" is not HTTP: the rest of the connection is relayed unread.
MAX_HEAD = 256 * 1024


class RecordingProxy:
    def __init__(self, target: tuple[str, int] | None = None) -> None:
        # Settable after start: a proxy in front of the local stack's embedded S3 must
        # exist before the stack (whose presigned URLs name it) and learns the S3's port
        # only once the stack runs (LocalStack.moto).
        self.target = target
        self._cut_after: int | None = None
        self._cut_done = threading.Event()
        self._upload_cut_after = 0
        self._upload_cuts_left = 0
        self._upload_cut_methods: frozenset[str] = frozenset()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.requests: list[str] = []  # request heads, client to server
        self.statuses: list[str] = []  # status lines, server to client
        # Request lines of the PUTs the server answered 2xx: what reached storage.
        self.puts: list[str] = []
        self.uploads_cut = 0  # requests whose body was cut short (cut_uploads)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._accepting.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def was_cut(self) -> bool:
        return self._cut_done.is_set()

    def cut_next_download_after(self, size: int) -> None:
        """Drop the next file download's connection after `size` bytes, once."""
        self._cut_done.clear()
        self._cut_after = size

    def cut_uploads(
        self, after_bytes: int, times: int = 1, methods: Collection[str] = ("PUT",)
    ) -> None:
        """Drop the connection of the next `times` requests (of `methods`) once
        `after_bytes` of their body have crossed: the server gets a truncated body and
        stores nothing, the client a dead connection. A request whose whole body is at
        most `after_bytes` passes and uses up no cut. `uploads_cut` counts the cuts."""
        with self._lock:
            self._upload_cut_after = after_bytes
            self._upload_cuts_left = times
            self._upload_cut_methods = frozenset(m.upper() for m in methods)

    def forget(self) -> None:
        with self._lock:
            self.requests.clear()
            self.statuses.clear()
            self.puts.clear()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                if self.target is None:
                    raise OSError("no target yet")
                upstream = socket.create_connection(self.target)
            except OSError:
                # Nothing to relay to: the client sees its connection closed.
                _close(client)
                continue
            connection = _Connection()
            threading.Thread(
                target=self._upstream, args=(client, upstream, connection), daemon=True
            ).start()
            threading.Thread(
                target=self._downstream, args=(upstream, client, connection), daemon=True
            ).start()

    # -- client to server ------------------------------------------------------------------

    def _upstream(
        self, client: socket.socket, upstream: socket.socket, connection: _Connection
    ) -> None:
        request = _Request("", "")

        def on_head(head: bytes) -> int:
            nonlocal request
            text = head.decode("latin-1")
            line = text.split("\r\n", 1)[0]
            method, _, rest = line.partition(" ")
            target = rest.split(" ", 1)[0]
            request = _Request(method, line)
            with self._lock:
                self.requests.append(text)
                request.may_cut = method in self._upload_cut_methods
            # Registered before the request goes on: its response cannot come sooner.
            connection.pending.append(request)
            path = target.split("?", 1)[0]
            if method == "GET" and path.startswith("/files/") and not path.endswith(".metadata"):
                connection.downloading.set()
            headers = _headers(text)
            if "chunked" in headers.get("transfer-encoding", "").lower():
                return CHUNKED
            return _length(headers) or 0  # a request without a length has no body

        def on_body(size: int) -> int | None:
            sent = request.body_sent
            request.body_sent += size
            if not request.may_cut:
                return None
            with self._lock:
                after = self._upload_cut_after
                if sent + size <= after or self._upload_cuts_left <= 0:
                    return None
                self._upload_cuts_left -= 1
                self.uploads_cut += 1
            return max(0, after - sent)

        framer = _Framer(on_head, on_body)
        try:
            while data := client.recv(65536):
                cut = framer.feed(data)
                if cut is not None:
                    # Mid-body: the server sees the connection end before the body does.
                    upstream.sendall(data[:cut])
                    _close(client)
                    break
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)

    # -- server to client ------------------------------------------------------------------

    def _downstream(
        self, upstream: socket.socket, client: socket.socket, connection: _Connection
    ) -> None:
        framer = _Framer(lambda head: self._response_framing(head, connection), lambda size: None)
        relayed = 0
        try:
            while data := upstream.recv(65536):
                framer.feed(data)
                limit = self._cut_after
                if (
                    connection.downloading.is_set()
                    and limit is not None
                    and not self._cut_done.is_set()
                ):
                    relayed += len(data)
                    if relayed > limit:
                        # Drop the connection mid-file, once: the client must resume.
                        self._cut_done.set()
                        self._cut_after = None
                        client.sendall(data[: max(0, len(data) - (relayed - limit))])
                        break
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)

    def _response_framing(self, head: bytes, connection: _Connection) -> int:
        """Records a response's status line (and, for a final response, the request it
        answers); returns how its body is framed."""
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        with self._lock:
            self.statuses.append(line)
        try:
            status = int(line.split(" ")[1])
        except (IndexError, ValueError):
            return UNTIL_CLOSE
        if 100 <= status < 200:
            return 0  # interim (100 Continue): the final response is still to come
        request = connection.pending.popleft() if connection.pending else None
        if request is not None and request.method == "PUT" and 200 <= status < 300:
            with self._lock:
                self.puts.append(request.line)
        if (request is not None and request.method == "HEAD") or status in (204, 304):
            return 0
        headers = _headers(head.decode("latin-1"))
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return CHUNKED
        length = _length(headers)
        return UNTIL_CLOSE if length is None else length


@dataclass
class _Request:
    method: str
    line: str
    body_sent: int = 0
    may_cut: bool = False


class _Connection:
    """What the two directions of one proxied connection share."""

    def __init__(self) -> None:
        # Requests not answered yet, in order (HTTP/1.1 answers in request order).
        self.pending: collections.deque[_Request] = collections.deque()
        self.downloading = threading.Event()


class _Framer:
    """Splits one direction of an HTTP/1.1 connection into messages. `on_head` gets each
    head (without its blank line) and returns the body's framing; `on_body` gets the size
    of each run of body bytes and may return how many of them to let through, which ends
    the feed: `feed` then returns the offset in its data at which to cut."""

    def __init__(
        self, on_head: Callable[[bytes], int], on_body: Callable[[int], int | None]
    ) -> None:
        self._on_head = on_head
        self._on_body = on_body
        self._state = "head"
        self._buffer = b""  # an incomplete head, chunk-size line or trailer
        self._remaining = 0

    def feed(self, data: bytes) -> int | None:
        pos = 0
        while pos < len(data):
            if self._state == "opaque":
                return None
            if self._state in ("head", "size", "trailer"):
                pos = self._line_state(data, pos)
                continue
            available = len(data) - pos
            take = available if self._state == "close" else min(self._remaining, available)
            allowed = self._on_body(take)
            if allowed is not None:
                return pos + min(allowed, take)
            pos += take
            if self._state == "close":
                continue
            self._remaining -= take
            if self._remaining == 0:
                self._state = "size" if self._state == "chunk" else "head"
        return None

    def _line_state(self, data: bytes, pos: int) -> int:
        """Consume what a head, chunk-size line or trailer needs; the new offset."""
        before = len(self._buffer)
        self._buffer += data[pos:]
        if self._state == "trailer" and self._buffer.startswith(b"\r\n"):
            end, skip = 0, 2
        else:
            marker = b"\r\n" if self._state == "size" else b"\r\n\r\n"
            end = self._buffer.find(marker)
            skip = len(marker)
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                self._state, self._buffer = "opaque", b""
            return len(data)
        taken = self._buffer[:end]
        self._buffer = b""
        pos += end + skip - before
        if self._state == "trailer":
            self._state = "head"
        elif self._state == "size":
            try:
                size = int(taken.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._state = "opaque"
                return pos
            # A chunk's data and its CRLF; the last chunk is followed by trailers.
            self._state, self._remaining = ("trailer", 0) if size == 0 else ("chunk", size + 2)
        else:
            framing = self._on_head(taken)
            if framing == CHUNKED:
                self._state = "size"
            elif framing == UNTIL_CLOSE:
                self._state = "close"
            elif framing > 0:
                self._state, self._remaining = "length", framing
        return pos


def _headers(head: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def _length(headers: dict[str, str]) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
