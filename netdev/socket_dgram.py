"""Datagram socket netdev (mcast=, udp=, fd= with a datagram socket) — the datagram half of
QEMU's net/socket.c (net_socket_send_dgram, net_socket_receive_dgram, net_socket_fd_init_dgram).

One datagram is one frame, no length prefix. Datagrams longer than 69632 bytes are
truncated, as in QEMU (Q8). Incoming datagrams are accepted from any source (Q10).

Wire→peer: up to `READ_BURST` datagrams per readable event; when the peer queues one
(send_async → 0) reading stops until its completion callback fires.
Peer→wire: `sendto`; EAGAIN → receive returns 0 (the queue keeps the frame) and write
interest is switched on; the writable callback flushes the queue.

Fixed seed bugs (docs/quirks.md): a zero-length datagram is ignored and counted
instead of switching the netdev off (Q7); empty frames from the peer are not sent,
because a QEMU peer would take the empty datagram for the end of the connection.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from emu.core.loop import MainLoop
from netdev.framing import NET_BUFSIZE
from netdev.sockaddr import Address
from netdev.socket_poll import PolledSocket

READ_BURST = 64


@dataclass
class DgramStats:
    empty_datagrams_in: int = 0
    empty_frames_out: int = 0
    send_errors: int = 0


class DgramSocket(PolledSocket):
    """A datagram-socket netdev sending every frame to `destination`."""

    def __init__(
        self, loop: MainLoop, name: str, sock: socket.socket,
        destination: Address | str | bytes | None, info: str
    ) -> None:
        """`destination`: where frames go (an inet address or a unix path); None sends on a
        connected socket (`-netdev dgram` with only a local fd)."""
        super().__init__(loop, name, sock)
        self._destination = destination
        self.info_str = info
        self.stats = DgramStats()
        sock.setblocking(False)
        self._set_reading(True)

    def _on_readable(self) -> None:
        sock = self._sock
        for _ in range(READ_BURST):
            if sock is None or self._outstanding:
                break
            try:
                frame = sock.recv(NET_BUFSIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # ICMP errors (e.g. port unreachable after a udp= send) are not fatal.
                continue
            if self.trace.net_socket_read:
                self.trace.emit("net_socket_read", netdev=self.name, bytes=len(frame),
                                frames=1 if frame else 0)
            if not frame:
                self.stats.empty_datagrams_in += 1
                if self.trace.net_socket_empty:
                    self.trace.emit("net_socket_empty", netdev=self.name, count=1)
                continue
            if self.send_async(frame, self._on_sent) == 0:
                self._outstanding += 1
        self._hold_input()

    def receive(self, frame: bytes) -> int:
        if not frame:
            self.stats.empty_frames_out += 1
            return 1
        sock = self._sock
        if sock is None:
            return -1
        try:
            if self._destination is None:
                sent = sock.send(frame)
            else:
                sent = sock.sendto(frame, self._destination)
        except (BlockingIOError, InterruptedError):
            if not self._writing and self.trace.net_socket_backpressure:
                self.trace.emit("net_socket_backpressure", netdev=self.name, dir="write",
                                state="on")
            self._set_writing(True)
            return 0
        except OSError:
            self.stats.send_errors += 1
            return -1
        if self.trace.net_socket_write:
            self.trace.emit("net_socket_write", netdev=self.name, bytes=sent)
        return sent or 1

    def _on_writable(self) -> None:
        if self.trace.net_socket_backpressure:
            self.trace.emit("net_socket_backpressure", netdev=self.name, dir="write", state="off")
        self._set_writing(False)
        self.flush_queued()

    def cleanup(self) -> None:
        if self._sock is not None:
            self._loop.remove_fd(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self._reading = self._writing = False
