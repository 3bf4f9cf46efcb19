"""PolledSocket — QEMU's net_socket_read_poll / net_socket_write_poll (net/socket.c).

The part every socket netdev shares: one data socket whose read and write interest are
switched independently on the MainLoop. Unlike the seed, turning write polling on never
replaces a read handler (or a pending connect's completion handler) already in place.
It also holds input back while the peer still has frames this socket offered it (QEMU
turns read polling off from the send-completion path): `_outstanding` counts those
offers, `_hold_input` stops reading, and `_on_sent` resumes once the last one is
released. Subclasses provide `_on_readable` and `_on_writable`.
"""

from __future__ import annotations

import socket

from emu.core.loop import MainLoop
from netdev.client import NetClient


class PolledSocket(NetClient):
    """A NetClient backed by one non-blocking socket, with read/write interest flags."""

    def __init__(self, loop: MainLoop, name: str, sock: socket.socket | None) -> None:
        super().__init__(name, "socket")
        self._loop = loop
        self._sock = sock
        self._reading = False
        self._writing = False
        self._outstanding = 0

    @property
    def sock(self) -> socket.socket | None:
        return self._sock

    def owned_fds(self) -> list[int]:
        """The descriptors this netdev holds open."""
        return [] if self._sock is None else [self._sock.fileno()]

    def _on_readable(self) -> None:
        raise NotImplementedError

    def _on_writable(self) -> None:
        raise NotImplementedError

    def _set_reading(self, on: bool) -> None:
        if on == self._reading or self._sock is None:
            return
        self._reading = on
        self._loop.set_read_handler(self._sock.fileno(), self._on_readable if on else None)

    def _set_writing(self, on: bool) -> None:
        if on == self._writing or self._sock is None:
            return
        self._writing = on
        self._loop.set_write_handler(self._sock.fileno(), self._on_writable if on else None)

    def _hold_input(self) -> None:
        """Stop reading while the peer still holds frames this socket offered it."""
        if self._outstanding:
            if self._reading and self.trace.net_socket_backpressure:
                self.trace.emit("net_socket_backpressure", netdev=self.name, dir="read",
                                state="on")
            self._set_reading(False)

    def _on_sent(self, _sender: NetClient, _result: int) -> None:
        self._outstanding -= 1
        if self._outstanding == 0 and self._sock is not None:
            if self.trace.net_socket_backpressure:
                self.trace.emit("net_socket_backpressure", netdev=self.name, dir="read",
                                state="off")
            self._set_reading(True)
