"""Stream socket netdev (listen=, connect=, fd= with a stream socket) — the stream half of
QEMU's net/socket.c (net_socket_send, net_socket_receive, net_socket_accept, ...).

Wire→peer: one large `recv` is cut into a batch of complete records
(`netdev.framing.Reassembler`; a read that is exactly one record skips the parse) and
handed over with `send_batch`. If the peer cannot take all of it, the rest is queued
with a completion callback and the fd is not read again until every such callback has
fired (QEMU's backpressure, per batch).

Peer→wire: frames (single or batched) are appended, already framed, to an output
buffer. When nothing is waiting to be written, a frame is written at once, with one
`send` and nothing scheduled (`emu.core.loop.MainLoop.turn` tells a second frame of the
same callback): a lone frame (a guest's reply, a relayed ping) leaves without waiting
for a loop turn, which is
QEMU's behaviour too (net_socket_receive writes in the caller). That opens a window
until the current loop handler returns (`emu.core.loop.MainLoop.soon`): frames added
meanwhile (a guest's burst, a hub's batch) are written together when it closes, and
while the socket is not writable the rest waits for it. So one `sendmsg` carries many
records (at most IOV_MAX buffers, more in further calls) and a partial send simply
resumes mid-record (the seed's `send_index`); only a send the kernel cut short is a
partial send (`net_socket_partial_send`), not one that took all it was offered. When
the buffer holds `OUT_HIGH` bytes the client refuses frames (receive → 0); once it
drains below `OUT_LOW` it calls `flush_queued()`, which also wakes a hub feeding it.

Fixed seed bugs (docs/quirks.md): every data socket is non-blocking with TCP_NODELAY
(Q1); read and write interest are independent, and data writes wait for the connect to
finish (Q2); a failed connect is reported (Q3); empty records are dropped and counted
(Q5); a disconnect discards the unsent output and drops, rather than strands, the frames
queued for the old connection (Q6).
"""

from __future__ import annotations

import errno
import os
import socket
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice

from emu.core.acceptor import Acceptor
from emu.core.errors import error_report
from emu.core.loop import MainLoop
from netdev.framing import OVERSIZE_MESSAGE, Reassembler, RecordBatch, pack_len
from netdev.sockaddr import Address, format_address, os_error
from netdev.socket_poll import PolledSocket

RECV_SIZE = 512 * 1024
BULK_READ = RECV_SIZE // 2
OUT_HIGH = 512 * 1024
OUT_LOW = OUT_HIGH // 2

IOV_MAX = 1024

_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, errno.EINTR}


@dataclass
class StreamStats:
    """Counters a test or the monitor can read."""

    empty_records_in: int = 0
    empty_frames_out: int = 0
    oversized: int = 0
    connections: int = 0
    output_discarded: int = 0


class StreamSocket(PolledSocket):
    """A stream-socket netdev; build it with `listen`, `connect` or `from_socket`."""

    def __init__(self, loop: MainLoop, name: str) -> None:
        super().__init__(loop, name, None)
        self._listen: socket.socket | None = None
        self._acceptor: Acceptor | None = None
        self._connected = False
        self._write_scheduled = False
        self._write_turn = -1
        self._stalled = False
        self._reassembler = Reassembler()
        # A small read goes into this buffer and is copied out (batches keep referring
        # to their chunk): recv() would allocate RECV_SIZE bytes for it, which malloc
        # serves with an mmap and munmap (15 us, several times a small read's cost)
        # until a chunk that large has been freed. After a large read the next one is
        # a recv(), whose bytes are handed on without a copy.
        self._inbuf = memoryview(bytearray(RECV_SIZE))
        self._bulk = False
        self._out: deque[bytes | memoryview] = deque()
        self._out_len = 0
        self._peer_address: Address = ("0.0.0.0", 0)
        self.stats = StreamStats()
        self.report: Callable[[str], None] = error_report

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def listen(cls, loop: MainLoop, name: str, address: Address) -> StreamSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setblocking(False)
            try:
                sock.bind(address)
            except OSError as err:
                raise os_error(f"can't bind ip={format_address(address)} to socket", err) from None
            try:
                sock.listen(0)
            except OSError as err:
                raise os_error("can't listen on socket", err) from None
        except BaseException:
            sock.close()
            raise
        client = cls(loop, name)
        client._listen = sock
        client.link_down = True
        client._acceptor = Acceptor(loop, sock, client._accepted,
                                    lambda text: client.report(f"toynic: netdev {name}: {text}"))
        client._acceptor.set_accepting(True)
        return client

    @classmethod
    def connect(cls, loop: MainLoop, name: str, address: Address) -> StreamSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        _nodelay(sock)
        err = sock.connect_ex(address)
        if err and err not in _IN_PROGRESS:
            sock.close()
            raise os_error(f"can't connect socket to {format_address(address)}",
                           OSError(err, os.strerror(err)))
        client = cls(loop, name)
        client._peer_address = address
        client.info_str = f"socket: connect to {format_address(address)}"
        if err:
            client._sock = sock
            loop.set_write_handler(sock.fileno(), client._on_connect_done)
        else:
            client._attach(sock)
        return client

    @classmethod
    def from_socket(cls, loop: MainLoop, name: str, sock: socket.socket) -> StreamSocket:
        client = cls(loop, name)
        client.info_str = f"socket: fd={sock.fileno()}"
        client._attach(sock)
        return client

    # -- connection state ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def owned_fds(self) -> list[int]:
        return [*super().owned_fds(), *([] if self._listen is None else [self._listen.fileno()])]

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """Where a `listen=` netdev listens (handy with port 0), else None."""
        return None if self._listen is None else self._listen.getsockname()[:2]

    def _attach(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        _nodelay(sock)
        self._sock = sock
        self._connected = True
        self.link_down = False
        self.stats.connections += 1
        if self._outstanding == 0:
            self._set_reading(True)
        if self._out:
            self._schedule_write()

    def _accepted(self, sock: socket.socket, peer: Address) -> None:
        assert self._acceptor is not None
        self._acceptor.set_accepting(False)
        self.info_str = f"socket: connection from {peer[0]}:{peer[1]}"
        if self.trace.net_socket_accept:
            self.trace.emit("net_socket_accept", netdev=self.name, peer=f"{peer[0]}:{peer[1]}")
        self._attach(sock)

    def _on_connect_done(self) -> None:
        sock = self._sock
        assert sock is not None
        self._loop.set_write_handler(sock.fileno(), None)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        address = format_address(self._peer_address)
        if err:
            if self.trace.net_socket_connect_error:
                self.trace.emit("net_socket_connect_error", netdev=self.name, peer=address,
                                error=errno.errorcode.get(err, err))
            self.report(f"toynic: netdev {self.name}: connect to {address} failed: "
                        f"{os.strerror(err)}")
            self._close_connection()
            return
        if self.trace.net_socket_connect:
            self.trace.emit("net_socket_connect", netdev=self.name, peer=address)
        self._attach(sock)

    def _close_connection(self, reason: str = "eof") -> None:
        sock = self._sock
        if sock is None:
            return
        if self._connected and self.trace.net_socket_disconnect:
            self.trace.emit("net_socket_disconnect", netdev=self.name, reason=reason)
        self._loop.remove_fd(sock.fileno())
        sock.close()
        self._sock = None
        self._connected = self._reading = self._writing = False
        self._reassembler.reset()
        self._discard_output()
        self.link_down = True
        self.info_str = ""
        if self._acceptor is not None:
            self._acceptor.set_accepting(True)
        # Frames still queued for the old connection are dropped now (link is down), so
        # their senders are released instead of waiting for a flush nobody would do.
        self._stalled = False
        self.flush_queued()

    # -- wire → peer -----------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            if self._bulk:
                chunk: bytes | memoryview = sock.recv(RECV_SIZE)
            else:
                chunk = self._inbuf[:sock.recv_into(self._inbuf)]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close_connection("error")
            return
        size = len(chunk)
        self._bulk = size >= BULK_READ
        if not size:
            self._close_connection()
            return
        if self._reassembler.whole_record(chunk, size):
            # One frame in flight: hand it on without building a Feed, straight to the
            # wire beyond a hub when nothing on the way would see a difference.
            if self.trace.net_socket_read:
                self.trace.emit("net_socket_read", netdev=self.name, bytes=size, frames=1)
            peer = self.peer
            if peer is not None and peer.relay_record(self, memoryview(chunk)):
                return
            batch = RecordBatch(bytes(chunk), 1)
            if self.send_batch(batch, self._on_sent) < 1:
                self._outstanding += 1
                self._hold_input()
            return
        chunk = bytes(chunk)
        feed = self._reassembler.feed(chunk)
        if self.trace.net_socket_read:
            self.trace.emit("net_socket_read", netdev=self.name, bytes=len(chunk),
                            frames=sum(batch.count for batch in feed.batches))
        if feed.empty_records:
            self.stats.empty_records_in += feed.empty_records
            if self.trace.net_socket_empty:
                self.trace.emit("net_socket_empty", netdev=self.name, count=feed.empty_records)
        for batch in feed.batches:
            if self.send_batch(batch, self._on_sent) < batch.count:
                self._outstanding += 1
        self._hold_input()
        if feed.oversized:
            self.stats.oversized += 1
            if self.trace.net_socket_oversize:
                self.trace.emit("net_socket_oversize", netdev=self.name)
            self.report(OVERSIZE_MESSAGE)
            self._close_connection("oversize")

    # -- peer → wire -----------------------------------------------------------------------

    def can_receive(self) -> bool:
        if self.link_down or self._out_len < OUT_HIGH:
            return True
        self._stall()
        return False

    def _stall(self) -> None:
        if not self._stalled and self.trace.net_socket_backpressure:
            self.trace.emit("net_socket_backpressure", netdev=self.name, dir="write", state="on")
        self._stalled = True

    def receive(self, frame: bytes) -> int:
        if not frame:
            self.stats.empty_frames_out += 1
            return 1
        if self._out_len >= OUT_HIGH:
            self._stall()
            return 0
        if self._may_write_through():
            self._write_through(pack_len(len(frame)) + frame)
            return len(frame)
        self._out.append(pack_len(len(frame)))
        # Kept until written: a caller's mutable buffer must not change under us.
        self._out.append(frame if type(frame) is bytes else bytes(frame))
        self._out_len += 4 + len(frame)
        self._schedule_write()
        return len(frame)

    def receive_batch(self, batch: RecordBatch) -> int:
        if self._out_len >= OUT_HIGH:
            self._stall()
            return 0
        if self._may_write_through():
            self._write_through(batch.data)
            return batch.count
        self._out.append(batch.data)
        self._out_len += len(batch.data)
        self._schedule_write()
        return batch.count

    def write_record_now(self, record: memoryview) -> bool:
        # _may_write_through written out: every cut-through frame comes here.
        turn = self._loop.turn
        if self._out or self._write_scheduled or not self._connected or self._write_turn == turn:
            return False
        self._write_turn = turn
        self._write_through(record, True)
        return True

    def _may_write_through(self) -> bool:
        """Nothing waits to be written and this loop callback has not written yet: the
        frame goes out now. A later one in the same callback waits for the window to
        close (`_schedule_write`), so a burst shares one write."""
        if self._out or self._write_scheduled or not self._connected:
            return False
        turn = self._loop.turn
        if self._write_turn == turn:
            return False
        self._write_turn = turn
        return True

    def _write_through(self, data: bytes | memoryview, borrowed: bool = False) -> None:
        """Send `data` now; what the kernel does not take waits in the output buffer (a
        copy of it when `data` is `borrowed`: a buffer its owner reuses)."""
        sock = self._sock
        assert sock is not None
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            # The peer is gone, as in _write_out: the read side sees it and cleans up.
            self.stats.output_discarded += len(data)
            return
        if sent and self.trace.net_socket_write:
            self.trace.emit("net_socket_write", netdev=self.name, bytes=sent)
        if sent == len(data):
            return
        rest = memoryview(data)[sent:]
        self._out.append(rest.tobytes() if borrowed else rest)
        self._out_len += len(data) - sent
        if sent and self.trace.net_socket_partial_send:
            self.trace.emit("net_socket_partial_send", netdev=self.name, sent=sent,
                            remaining=self._out_len)
        self._set_writing(True)

    def _schedule_write(self) -> None:
        if self._writing or self._write_scheduled or not self._connected:
            return
        self._write_scheduled = True
        self._loop.soon(self._write_bh)

    def _write_bh(self) -> None:
        self._write_scheduled = False
        if self._connected and not self._writing:
            self._write_out()

    def _on_writable(self) -> None:
        self._write_out()

    def _write_out(self) -> None:
        sock = self._sock
        out = self._out
        while out and sock is not None:
            if len(out) <= IOV_MAX:
                buffers: Sequence[bytes | memoryview] = out
                offered = self._out_len
            else:
                # One sendmsg carries at most IOV_MAX buffers; the rest goes next round.
                buffers = list(islice(out, IOV_MAX))
                offered = sum(map(len, buffers))
            try:
                sent = sock.sendmsg(buffers)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # The peer is gone (EPIPE/ECONNRESET): what is buffered cannot arrive.
                # The read side sees the end of the connection and cleans up.
                self._discard_output()
                break
            self._out_len -= sent
            if self.trace.net_socket_write:
                self.trace.emit("net_socket_write", netdev=self.name, bytes=sent)
            self._consume(sent)
            if sent < offered:
                # The kernel's buffer is full: wait until the socket is writable again.
                if self.trace.net_socket_partial_send:
                    self.trace.emit("net_socket_partial_send", netdev=self.name,
                                    sent=sent, remaining=self._out_len)
                break
        self._set_writing(bool(out))
        if self._stalled and self._out_len < OUT_LOW:
            self._stalled = False
            if self.trace.net_socket_backpressure:
                self.trace.emit("net_socket_backpressure", netdev=self.name, dir="write",
                                state="off")
            self.flush_queued()

    def _consume(self, sent: int) -> None:
        """Drop the first `sent` bytes of the output buffer (a record may be cut)."""
        out = self._out
        while sent:
            head = out[0]
            if sent >= len(head):
                sent -= len(head)
                out.popleft()
            else:
                out[0] = memoryview(head)[sent:]
                break

    def _discard_output(self) -> None:
        if self._out_len:
            self.stats.output_discarded += self._out_len
        self._out.clear()
        self._out_len = 0

    def cleanup(self) -> None:
        if self._connected:
            # Output is written from a bottom half, so frames sent just before the
            # emulator stops may still be here: hand the kernel what it takes now.
            self._write_out()
        if self._acceptor is not None:
            self._acceptor.close()
        for sock in (self._sock, self._listen):
            if sock is not None:
                self._loop.remove_fd(sock.fileno())
                sock.close()
        self._sock = self._listen = None
        self._connected = self._reading = self._writing = False
        self._out.clear()
        self._out_len = 0


def _nodelay(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
