"""A fault-injecting TCP proxy for the PostgreSQL wire protocol, on loopback, for tests.

It forwards bytes both ways between the server under test and PostgreSQL, and reads the frontend messages
(client to PostgreSQL) as they pass: simple ``Query`` ('Q') and extended ``Parse`` ('P') carry the SQL. One
fault can be armed at a time, and fires once, on the first connection whose SQL matches:

- ``drop_after_commit(trigger)``: on the connection that sends SQL containing ``trigger``, wait for its next
  ``COMMIT``, forward it (up to its ``Sync`` for the extended protocol), give PostgreSQL a moment to commit,
  then cut both sides before the reply reaches the client. The transaction committed; the client cannot
  know.
- ``drop_mid_transaction(trigger)``: cut both sides instead of forwarding the statement containing
  ``trigger``. PostgreSQL sees the connection end inside the transaction and rolls it back.
- ``delay(seconds)``: every chunk, both ways, waits that long (until ``delay(0)``).

The connection must not be encrypted (``sslmode=disable``) so that the messages can be read.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


@dataclass
class _Fault:
    kind: str  # "after_commit" | "mid_transaction"
    trigger: str
    fired: threading.Event = field(default_factory=threading.Event)


class PostgresFaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._fault: _Fault | None = None
        self._delay = 0.0
        self._closing = False
        self._sockets: set[socket.socket] = set()
        self.cuts = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    # Control -----------------------------------------------------------------------------------------

    def __enter__(self) -> PostgresFaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                _close(sock)

    def drop_after_commit(self, trigger: str) -> threading.Event:
        return self._arm(_Fault("after_commit", trigger))

    def drop_mid_transaction(self, trigger: str) -> threading.Event:
        return self._arm(_Fault("mid_transaction", trigger))

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def disarm(self) -> None:
        with self._lock:
            self._fault = None

    def _arm(self, fault: _Fault) -> threading.Event:
        with self._lock:
            self._fault = fault
        return fault.fired

    # Forwarding --------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, server))
            link = _Link(self, client, server)
            threading.Thread(target=link.frontend, daemon=True).start()
            threading.Thread(target=link.backend, daemon=True).start()

    def _claim_fault(self, sql: str) -> _Fault | None:
        """The armed fault, taken (so that it fires once), if ``sql`` triggers it."""
        with self._lock:
            fault = self._fault
            if fault is None or fault.trigger not in sql:
                return None
            self._fault = None
            return fault


class _Link:
    """One proxied connection: the client's messages are parsed, PostgreSQL's are passed through."""

    def __init__(self, proxy: PostgresFaultProxy, client: socket.socket, server: socket.socket):
        self.proxy = proxy
        self.client = client
        self.server = server
        self.mute_backend = False  # once set, replies are swallowed (the cut is coming)
        self.pending: _Fault | None = (
            None  # an armed drop-after-commit waiting for this link's COMMIT
        )

    def cut(self) -> None:
        self.proxy.cuts += 1
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            _close(sock)

    def backend(self) -> None:
        try:
            while True:
                data = self.server.recv(65536)
                if not data:
                    break
                if self.proxy._delay:
                    time.sleep(self.proxy._delay)
                if self.mute_backend:
                    continue
                self.client.sendall(data)
        except OSError:
            pass
        finally:
            _close(self.client)

    def frontend(self) -> None:
        buffer = b""
        started = False
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                if self.proxy._delay:
                    time.sleep(self.proxy._delay)
                buffer += data
                out = b""
                while True:
                    message, buffer, started = _next_message(buffer, started)
                    if message is None:
                        break
                    action = self._inspect(message)
                    if action == "cut_now":
                        self.server.sendall(out)
                        self.cut()
                        return
                    out += message
                    if action == "cut_after":
                        self.mute_backend = True
                        self.server.sendall(out)
                        time.sleep(0.3)  # PostgreSQL commits while the client waits for an answer
                        if self.pending is not None:
                            self.pending.fired.set()
                        self.cut()
                        return
                self.server.sendall(out)
        except OSError:
            pass
        finally:
            _close(self.server)

    def _inspect(self, message: bytes) -> str | None:
        kind = message[:1]
        sql = _sql_of(message)
        if self.pending is not None:
            if self.pending.kind == "after_commit" and sql is not None and _is_commit(sql):
                self.mute_backend = True
                if kind == b"Q":
                    return "cut_after"
                self.pending.kind = "await_sync"  # extended protocol: the Sync runs it
                return None
            if self.pending.kind == "await_sync" and kind == b"S":
                return "cut_after"
            return None
        if sql is None:
            return None
        fault = self.proxy._claim_fault(sql)
        if fault is None:
            return None
        if fault.kind == "mid_transaction":
            fault.fired.set()
            return "cut_now"
        self.pending = fault
        return None


def _next_message(buffer: bytes, started: bool) -> tuple[bytes | None, bytes, bool]:
    """The next whole frontend message in ``buffer`` (None until it has all arrived)."""
    if not started:  # startup-phase packets have no type byte: length, then a code
        if len(buffer) < 8:
            return None, buffer, started
        (length,) = struct.unpack("!I", buffer[:4])
        if len(buffer) < length:
            return None, buffer, started
        (code,) = struct.unpack("!I", buffer[4:8])
        still_starting = code in (_SSL_REQUEST, _GSSENC_REQUEST)
        return buffer[:length], buffer[length:], not still_starting and code != _CANCEL_REQUEST
    if len(buffer) < 5:
        return None, buffer, started
    (length,) = struct.unpack("!I", buffer[1:5])
    if len(buffer) < 1 + length:
        return None, buffer, started
    return buffer[: 1 + length], buffer[1 + length :], started


def _sql_of(message: bytes) -> str | None:
    kind = message[:1]
    payload = message[5:]
    if kind == b"Q":
        return payload.split(b"\x00", 1)[0].decode(errors="replace")
    if kind == b"P":  # Parse: statement name, then the query
        parts = payload.split(b"\x00", 2)
        return parts[1].decode(errors="replace") if len(parts) > 1 else None
    return None


def _is_commit(sql: str) -> bool:
    return sql.strip().rstrip(";").strip().upper() in ("COMMIT", "END", "COMMIT TRANSACTION")


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
