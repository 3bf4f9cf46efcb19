"""`-netdev stream` — QEMU's net/stream.c (net_init_stream, net_stream_server_init,
net_stream_client_init, net_stream_arm_reconnect) over toynic's stream socket data path
(`netdev.socket_stream.StreamSocket`: same records, same backpressure).

`server=on` listens on `addr` (inet with IPv4/IPv6, unix path or abstract name, or an
inherited listening fd) and serves one client at a time, returning to listening when it
leaves; `server=off` (the default) connects to `addr`, or takes a connected fd.
The link is down while no peer is connected. The info string is QEMU's: `listening`,
`connecting`, the peer's URI (`tcp:127.0.0.1:4000`, `tcp:[::1]:4000`, `unix:/path`),
`error: ...`. A client with `reconnect-ms=N` tries again N ms after a failed connect
and after a disconnect, on a fixed timer (no backoff, as QEMU); every connection
starts on a record boundary (a partial record of the old one is discarded both ways).
Connects and disconnects are reported as QMP events NETDEV_STREAM_CONNECTED (with the
peer's SocketAddress; for unix, the listening socket's) and NETDEV_STREAM_DISCONNECTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

from emu.core.acceptor import Acceptor
from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import Opts
from netdev.fd_param import take_fd
from netdev.socket_stream import StreamSocket
from netdev.socketaddress import (
    SocketAddress,
    inet_listen,
    parse_socket_address,
    qapi_uri,
    resolve,
    sockaddr_to_qapi,
    unix_listen,
)

STREAM_KEYS = frozenset({"type", "id", "server", "reconnect-ms"})
UINT32_MAX = 0xFFFFFFFF
_IN_PROGRESS = {errno.EINPROGRESS, errno.EALREADY, errno.EINTR}

EventSink = Callable[[str, dict[str, Any]], None]


def _no_events(_name: str, _data: dict[str, Any]) -> None:
    """Where events go when nobody listens (a netdev built outside a Net)."""


def create_stream_netdev(loop: MainLoop, name: str, opts: Opts,
                         taken_fds: Mapping[int, str] | None = None,
                         events: EventSink = _no_events) -> StreamNetdev:
    """The stream netdev `opts` asks for (QEMU's net_init_stream)."""
    opts.check_keys(STREAM_KEYS | {key for key in opts.values if key.startswith("addr.")})
    server = opts.get_bool("server")
    addr = parse_socket_address(opts, "addr")
    assert addr is not None
    reconnect_text = opts.get("reconnect-ms")
    if server:
        if reconnect_text is not None:
            raise UserError("'reconnect' and 'reconnect-ms' options are incompatible with "
                            "socket in server mode")
        return StreamNetdev.server(loop, name, addr, taken_fds or {}, events)
    reconnect_ms = 0
    if reconnect_text is not None:
        if not reconnect_text.isdecimal() or not reconnect_text.isascii() \
                or int(reconnect_text) > UINT32_MAX:
            raise UserError("Parameter 'reconnect-ms' expects uint32_t")
        reconnect_ms = int(reconnect_text)
    return StreamNetdev.client(loop, name, addr, reconnect_ms, taken_fds or {}, events)


class StreamNetdev(StreamSocket):
    """A `-netdev stream` client or server; build it with `server` or `client`."""

    def __init__(self, loop: MainLoop, name: str, events: EventSink) -> None:
        super().__init__(loop, name)
        self.model = "stream"
        self.link_down = True
        self._events = events
        self._address: SocketAddress | None = None
        self._reconnect_ms = 0
        self._timer: asyncio.TimerHandle | None = None
        self._targets: list[tuple[int, Any]] = []
        self._unlink_path: str | None = None

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def server(cls, loop: MainLoop, name: str, addr: SocketAddress,
               taken_fds: Mapping[int, str], events: EventSink = _no_events) -> StreamNetdev:
        if addr.kind == "inet":
            sock = inet_listen(addr)
        elif addr.kind == "unix":
            sock = unix_listen(addr)
        else:
            sock = _inherited(addr.fd, taken_fds, listening=True)
        sock.setblocking(False)
        client = cls(loop, name, events)
        client._address = addr
        if addr.kind == "unix" and not addr.abstract:
            client._unlink_path = addr.path
        client._listen = sock
        client.info_str = "listening"
        client._acceptor = Acceptor(loop, sock, client._accepted,
                                    lambda text: client.report(f"toynic: netdev {name}: {text}"))
        client._acceptor.set_accepting(True)
        return client

    @classmethod
    def client(cls, loop: MainLoop, name: str, addr: SocketAddress, reconnect_ms: int,
               taken_fds: Mapping[int, str], events: EventSink = _no_events) -> StreamNetdev:
        client = cls(loop, name, events)
        client._address = addr
        client._reconnect_ms = reconnect_ms
        client.info_str = "connecting"
        if addr.kind == "fd":
            sock = _inherited(addr.fd, taken_fds, listening=False)
            client._connected_to(sock)
        else:
            if addr.kind == "inet":
                # A name that does not resolve is a user error now, not a retry later.
                resolve(addr, socket.SOCK_STREAM, passive=False)
            client._start_connect()
        return client

    # -- server side -----------------------------------------------------------------------

    @property
    def listen_address(self) -> Any:
        """Where a server listens (host, port) or its unix path; None for a client."""
        return None if self._listen is None else self._listen.getsockname()

    def _accepted(self, sock: socket.socket, _peer: Any) -> None:
        assert self._acceptor is not None
        self._acceptor.set_accepting(False)
        if sock.family == socket.AF_UNIX:
            # A unix peer has no name of its own: QEMU reports the listening address.
            where = sockaddr_to_qapi(socket.AF_UNIX, sock.getsockname())
        else:
            where = sockaddr_to_qapi(sock.family, sock.getpeername())
        self._attach(sock)
        self._announce(where)

    # -- client side -----------------------------------------------------------------------

    def _start_connect(self) -> None:
        self._timer = None
        addr = self._address
        assert addr is not None
        if addr.kind == "unix":
            self._targets = [(socket.AF_UNIX, addr.unix_address())]
        else:
            try:
                self._targets = resolve(addr, socket.SOCK_STREAM, passive=False)
            except UserError as err:
                self._connect_failed(str(err))
                return
        self._try_next(None)

    def _try_next(self, last: OSError | None) -> None:
        while self._targets:
            family, where = self._targets.pop(0)
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            err = sock.connect_ex(where)
            if err == 0:
                self._connected_to(sock)
                return
            if err in _IN_PROGRESS:
                self._sock = sock
                self._loop.set_write_handler(sock.fileno(), self._on_connect_done)
                return
            sock.close()
            last = OSError(err, os.strerror(err))
        assert self._address is not None
        reason = last.strerror if last is not None else "no address"
        self._connect_failed(f"Failed to connect to '{self._address.describe()}': {reason}")

    def _on_connect_done(self) -> None:
        sock = self._sock
        assert sock is not None
        self._loop.remove_fd(sock.fileno())
        self._sock = None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            self._try_next(OSError(err, os.strerror(err)))
            return
        self._connected_to(sock)

    def _connected_to(self, sock: socket.socket) -> None:
        if self._address is not None and self._address.keep_alive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        where = sockaddr_to_qapi(sock.family, sock.getpeername())
        self._attach(sock)
        self._announce(where)

    def _connect_failed(self, text: str) -> None:
        self.info_str = f"error: {text}"
        if self.trace.net_stream_connect_error:
            self.trace.emit("net_stream_connect_error", netdev=self.name, error=text)
        if self._reconnect_ms:
            self._arm_reconnect()
        else:
            self.report(f"toynic: netdev {self.name}: {text}")

    def _arm_reconnect(self) -> None:
        if self._reconnect_ms and self._timer is None:
            self.info_str = "connecting"
            self._timer = self._loop.call_later(self._reconnect_ms / 1000, self._reconnect)

    def _reconnect(self) -> None:
        if self.trace.net_stream_reconnect:
            self.trace.emit("net_stream_reconnect", netdev=self.name)
        self._start_connect()

    # -- both ------------------------------------------------------------------------------

    def _announce(self, where: dict[str, Any]) -> None:
        self.info_str = qapi_uri(where)
        if self.trace.net_stream_connect:
            self.trace.emit("net_stream_connect", netdev=self.name, peer=self.info_str)
        self._events("NETDEV_STREAM_CONNECTED", {"netdev-id": self.name, "addr": where})

    def _close_connection(self, reason: str = "eof") -> None:
        was_connected = self._connected
        info = self.info_str
        super()._close_connection(reason)
        if not was_connected:
            return
        if self.trace.net_stream_disconnect:
            self.trace.emit("net_stream_disconnect", netdev=self.name, reason=reason)
        self._events("NETDEV_STREAM_DISCONNECTED", {"netdev-id": self.name})
        # A client without reconnect-ms keeps naming its last peer, as QEMU's does.
        self.info_str = "listening" if self._listen is not None else info
        self._arm_reconnect()

    def cleanup(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sock is not None and not self._connected:
            # A connect still in progress.
            self._loop.remove_fd(self._sock.fileno())
            self._sock.close()
            self._sock = None
        super().cleanup()
        if self._unlink_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._unlink_path)
            self._unlink_path = None


def _inherited(fd: int, taken_fds: Mapping[int, str], listening: bool) -> socket.socket:
    """The stream socket behind an `addr.type=fd` descriptor: listening for a server,
    connected for a client."""
    take_fd(str(fd), taken_fds, "socket")
    try:
        sock = socket.socket(fileno=fd)
    except OSError as err:
        raise UserError(f"addr.str={fd} is not a socket: {err.strerror}") from None
    try:
        if sock.type != socket.SOCK_STREAM:
            raise UserError(f"addr.str={fd} is not a stream socket")
        if bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)) != listening:
            raise UserError(f"addr.str={fd} must be a "
                            f"{'listening' if listening else 'connected'} socket with "
                            f"server={'on' if listening else 'off'}")
        if not listening:
            sock.getpeername()
    except OSError as err:
        sock.detach()
        raise UserError(f"addr.str={fd} is not connected: {err.strerror}") from None
    except BaseException:
        sock.detach()
        raise
    return sock
