"""FrameFd — the part QEMU's net/tap.c (tap_send, tap_receive, tap_writable) and net/vde.c
(vde_to_qemu, vde_receive) share: one non-blocking descriptor on which one read is one
frame and one write is one frame (a tap device, VDE's unix datagram socket).

Descriptor→peer: up to `READ_BURST` frames per readable event, each sent with
`send_async`. When the peer queues one (its NIC's ring is full) reading stops until the
queue's completion callback fires, so the host holds the frames, never toynic (QEMU's
tap_send / tap_send_completed; QEMU's vde_to_qemu reads on regardless, quirk V1).
Peer→descriptor: one `write`; EAGAIN → `receive` returns 0 (the queue keeps the frame)
and write interest is switched on; the writable callback flushes the queue.

A read error other than EAGAIN (the interface or the switch went away) is reported
once on stderr and reading stops for good: an error that repeats on every poll must not
spin the loop. Each subclass emits its own trace events (`_trace_read`, `_trace_write`,
`_trace_backpressure`, `_trace_error`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from emu.core.errors import error_report
from emu.core.loop import MainLoop
from netdev.client import NetClient
from netdev.framing import NET_BUFSIZE

READ_BURST = 64


@dataclass
class FrameFdStats:
    frames_in: int = 0
    frames_out: int = 0
    empty_in: int = 0
    write_errors: int = 0
    read_errors: int = 0


class FrameFd(NetClient):
    """A NetClient over one descriptor carrying a frame per read and per write."""

    def __init__(self, loop: MainLoop, name: str, model: str, fd: int) -> None:
        super().__init__(name, model)
        self._loop = loop
        self._fd: int | None = fd
        self._reading = False
        self._writing = False
        self._outstanding = 0
        self.stats = FrameFdStats()
        self.report: Callable[[str], None] = error_report
        os.set_blocking(fd, False)

    @property
    def fd(self) -> int | None:
        return self._fd

    def owned_fds(self) -> list[int]:
        """The descriptors this netdev holds open (`fd=` must not take them over)."""
        return [] if self._fd is None else [self._fd]

    # -- trace hooks (each subclass emits its own events) -----------------------------------

    def _trace_read(self, length: int) -> None:
        raise NotImplementedError

    def _trace_write(self, length: int) -> None:
        raise NotImplementedError

    def _trace_backpressure(self, direction: str, state: str) -> None:
        raise NotImplementedError

    def _trace_error(self, op: str, error: str) -> None:
        raise NotImplementedError

    # -- polling ---------------------------------------------------------------------------

    def _set_reading(self, on: bool) -> None:
        if on == self._reading or self._fd is None:
            return
        self._reading = on
        self._loop.set_read_handler(self._fd, self._on_readable if on else None)

    def _set_writing(self, on: bool) -> None:
        if on == self._writing or self._fd is None:
            return
        self._writing = on
        self._loop.set_write_handler(self._fd, self._on_writable if on else None)

    # -- descriptor -> peer ------------------------------------------------------------------

    def _on_readable(self) -> None:
        for _ in range(READ_BURST):
            fd = self._fd
            if fd is None or self._outstanding or not self._reading:
                break
            try:
                frame = os.read(fd, NET_BUFSIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                self._read_failed(err)
                break
            if not frame:
                self.stats.empty_in += 1
                continue
            self.stats.frames_in += 1
            self._trace_read(len(frame))
            if self.send_async(frame, self._on_sent) == 0:
                self._outstanding += 1
        if self._outstanding and self._reading:
            self._trace_backpressure("read", "on")
            self._set_reading(False)

    def _on_sent(self, _sender: NetClient, _result: int) -> None:
        self._outstanding -= 1
        if self._outstanding == 0 and self._fd is not None and not self.stats.read_errors:
            self._trace_backpressure("read", "off")
            self._set_reading(True)

    def _read_failed(self, err: OSError) -> None:
        self.stats.read_errors += 1
        self._set_reading(False)
        self._trace_error("read", err.strerror or str(err.errno))
        self.report(f"toynic: netdev {self.name}: read failed: {err.strerror}; "
                    "no more frames from it")

    # -- peer -> descriptor ------------------------------------------------------------------

    def receive(self, frame: bytes) -> int:
        fd = self._fd
        if fd is None:
            return -1
        try:
            written = os.write(fd, frame)
        except (BlockingIOError, InterruptedError):
            if not self._writing:
                self._trace_backpressure("write", "on")
            self._set_writing(True)
            return 0
        except OSError as err:
            # The interface is down, the switch is gone: the frame is dropped, as a
            # cable would drop it, and the guest goes on.
            self.stats.write_errors += 1
            self._trace_error("write", err.strerror or str(err.errno))
            return -1
        self.stats.frames_out += 1
        self._trace_write(written)
        return written or 1

    def _on_writable(self) -> None:
        self._trace_backpressure("write", "off")
        self._set_writing(False)
        self.flush_queued()

    # -- teardown ----------------------------------------------------------------------------

    def cleanup(self) -> None:
        fd = self._fd
        if fd is None:
            return
        self._loop.remove_fd(fd)
        self._reading = self._writing = False
        self._fd = None
        with contextlib.suppress(OSError):
            os.close(fd)
