"""A TCP proxy on loopback that records what crosses it and can cut a download short:
how the tests watch real installers talk to the local stack."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class RecordingProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._cut_after: int | None = None
        self._cut_done = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.requests: list[str] = []  # request heads, client to server
        self.statuses: list[str] = []  # status lines, server to client
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
    def was_cut(self) -> bool:
        return self._cut_done.is_set()

    def cut_next_download_after(self, size: int) -> None:
        """Drop the next file download's connection after `size` bytes, once."""
        self._cut_done.clear()
        self._cut_after = size

    def forget(self) -> None:
        with self._lock:
            self.requests.clear()
            self.statuses.clear()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            downloading = threading.Event()
            threading.Thread(
                target=self._upstream, args=(client, upstream, downloading), daemon=True
            ).start()
            threading.Thread(
                target=self._downstream, args=(upstream, client, downloading), daemon=True
            ).start()

    def _upstream(
        self, client: socket.socket, upstream: socket.socket, downloading: threading.Event
    ) -> None:
        try:
            while data := client.recv(65536):
                for head in data.split(b"\r\n\r\n"):
                    if head[:4] in (b"GET ", b"HEAD", b"POST"):
                        with self._lock:
                            self.requests.append(head.decode("latin-1"))
                        if head.startswith(b"GET /files/") and not head.split(b" ")[1].endswith(
                            b".metadata"
                        ):
                            downloading.set()
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)

    def _downstream(
        self, upstream: socket.socket, client: socket.socket, downloading: threading.Event
    ) -> None:
        relayed = 0
        try:
            while data := upstream.recv(65536):
                if data.startswith(b"HTTP/1."):
                    with self._lock:
                        self.statuses.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                limit = self._cut_after
                if downloading.is_set() and limit is not None and not self._cut_done.is_set():
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


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
