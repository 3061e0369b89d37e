"""A Unix-socket proxy in front of the Docker engine that a test can cut and restore.

The test platform's DOCKER_HOST points here. ``cut()`` closes every open connection and
refuses new ones (as an engine that went away); ``restore()`` lets traffic through again.
``drop_next(n)`` closes the next n connections unanswered. ``open_requests(b"/logs?")``
counts the connections still open whose last request names that fragment (the open log
streams of a node's agent).
"""
from __future__ import annotations

import os
import socket
import threading

METHODS = {b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"PATCH", b"OPTIONS"}


class DockerProxy:
    def __init__(self, listen_path: str, engine_path: str = "/var/run/docker.sock"):
        self.listen_path, self.engine_path = listen_path, engine_path
        self._cut = threading.Event()
        self._hold_pattern: bytes | None = None
        self._released = threading.Event()
        self.held = threading.Event()
        self._conns: set[socket.socket] = set()
        self._requests: dict[socket.socket, bytes] = {}   # client socket -> last request line
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._drop = 0   # connections still to be closed as soon as they are accepted

    @property
    def url(self) -> str:
        return f"unix://{self.listen_path}"

    def start(self) -> None:
        if os.path.exists(self.listen_path):
            os.unlink(self.listen_path)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.listen_path)
        self._server.listen(256)
        threading.Thread(target=self._accept, daemon=True, name="docker-proxy").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                dropped = self._drop > 0
                self._drop -= dropped
            if self._cut.is_set() or dropped:
                client.close()
                continue
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.engine_path)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            for src, dst, outbound in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(src, dst, outbound),
                                 daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, outbound: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if outbound and data[:8].split(b" ", 1)[0] in METHODS:
                    with self._lock:
                        self._requests[src] = data.split(b"\r\n", 1)[0]
                pattern = self._hold_pattern
                if outbound and pattern is not None and pattern in data:
                    self.held.set()
                    self._released.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
                with self._lock:
                    self._conns.discard(s)
                    self._requests.pop(s, None)

    def drop_next(self, count: int) -> None:
        """Close the next ``count`` connections as soon as they are accepted (an engine that
        drops a connection before answering)."""
        with self._lock:
            self._drop = count

    def open_requests(self, fragment: bytes) -> int:
        """Open connections whose last request line holds ``fragment``."""
        with self._lock:
            return sum(1 for line in self._requests.values() if fragment in line)

    def hold(self, pattern: bytes) -> None:
        """Hold (do not forward) requests containing ``pattern`` until ``release()``."""
        self._released.clear()
        self.held.clear()
        self._hold_pattern = pattern

    def release(self) -> None:
        self._hold_pattern = None
        self._released.set()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self.release()
        self.cut()
        if self._server is not None:
            self._server.close()
        if os.path.exists(self.listen_path):
            os.unlink(self.listen_path)
