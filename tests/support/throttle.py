"""A throttling TCP proxy on 127.0.0.1 (a free port) in front of another loopback address,
such as the tests' registry: every byte through it, both ways and over all connections
together, waits its turn so that at most ``rate`` bytes pass per second. A pull through it
is slow enough to watch its progress.

Its threads fail loudly: the first unexpected exception in any of them is kept in ``error``
(with its traceback), ``check()`` raises it, and ``stop()`` raises it too, so the test that
used the proxy fails. A peer that closes or resets its connection is an ordinary end of
that connection, not an error.
"""
from __future__ import annotations

import socket
import threading
import time
import traceback

from tests.support.platform import free_port

CHUNK = 16384


class Bucket:
    """Bytes per second shared by every connection: each chunk reserves the next slot of
    time on one schedule (no burst saved up while idle)."""

    def __init__(self, rate: int | None):
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = time.monotonic()

    def take(self, size: int) -> None:
        rate = self.rate
        if not rate:
            return  # unlimited
        with self._lock:
            now = time.monotonic()
            start = max(now, self._free_at)
            self._free_at = start + size / rate
            delay = self._free_at - now
        time.sleep(delay)


class Throttle:
    """``start()``, then point references at ``host`` instead of ``upstream``."""

    def __init__(self, upstream: str, rate: int | None):
        upstream_host, _, upstream_port = upstream.rpartition(":")
        self.upstream = (upstream_host, int(upstream_port))
        self.bucket = Bucket(rate)
        self.port = free_port()
        self.error: str | None = None
        self.forwarded = 0          # bytes sent back to the clients (the download side)
        self.connections = 0
        self._server: socket.socket | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def rate(self) -> int | None:
        return self.bucket.rate

    @rate.setter
    def rate(self, value: int | None) -> None:
        """Bytes per second from now on (None: unlimited)."""
        self.bucket.rate = value

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port), backlog=64)
        self._spawn(self._accept, "throttle-accept")

    def _spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=self._guarded, args=(target, *args), name=name,
                                  daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _guarded(self, target, *args) -> None:
        try:
            target(*args)
        except BaseException:  # noqa: BLE001 - kept and raised in the test's thread
            with self._lock:
                if self.error is None:
                    self.error = traceback.format_exc()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                if self._stopping.is_set():
                    return  # closed by stop()
                raise
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()  # as a server that is down: the client sees a closed socket
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
                self.connections += 1
            self._spawn(self._pipe, "throttle-up", client, upstream, False)
            self._spawn(self._pipe, "throttle-down", upstream, client, True)

    def _pipe(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while True:
                try:
                    data = src.recv(CHUNK)
                except OSError:
                    return  # reset by the peer, or closed by stop()
                if not data:
                    return
                self.bucket.take(len(data))
                try:
                    dst.sendall(data)
                except OSError:
                    return
                if downstream:
                    with self._lock:
                        self.forwarded += len(data)
        finally:
            for sock in (src, dst):
                _close(sock)
                with self._lock:
                    self._sockets.discard(sock)

    def check(self) -> None:
        """Raise if one of the proxy's threads died of an unexpected exception."""
        if self.error is not None:
            raise AssertionError(f"throttling proxy {self.host} failed:\n{self.error}")

    def stop(self, timeout: float = 10) -> None:
        """Close the listener and every connection, wait for the threads; raise if one of
        them failed or is still running."""
        self._stopping.set()
        if self._server is not None:
            _close(self._server)
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            _close(sock)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self.check()
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            raise AssertionError(f"throttling proxy {self.host}: threads still running "
                                 f"after stop: {alive}")


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
