"""FdWriter — output to a descriptor that never blocks the main loop (QEMU: a chardev
frontend's write with a G_IO_OUT watch), for the console and the monitor.

Bytes wait in a bounded backlog, go out when the descriptor takes them, and past the
bound the oldest are dropped and counted (see `FdWriter` for how a terminal shared with
the parent shell is written without blocking). `fd_pollable` tells whether epoll can
watch a descriptor at all.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import sys
from collections.abc import Callable

from emu.core.loop import Handler, MainLoop

# What an FdWriter keeps unwritten by default before it drops the oldest bytes.
OUTPUT_BACKLOG = 1 << 20
# The most one write() call hands the kernel, so one flush never takes long.
WRITE_CHUNK = 1 << 16
STDOUT_FD = 1


def fd_pollable(fd: int) -> bool:
    """Whether epoll can watch `fd` (it refuses regular files, directories, /dev/null:
    they are always "ready" and a read or write on them never waits for a peer)."""
    with select.epoll() as probe:
        try:
            probe.register(fd, select.EPOLLIN)
        except PermissionError:
            return False
    return True


class FdWriter:
    """Output to a file descriptor that never blocks the loop (QEMU: a chardev frontend's
    write with a G_IO_OUT watch), for the console and the monitor.

    `write` appends to a backlog of at most `limit` bytes; past it the oldest bytes are
    dropped and counted in `dropped`. The backlog goes out in a bottom half, on `flush()`,
    and, while the descriptor is full, from a write handler. A write error other than
    "would block" (EPIPE, ENOSPC, EBADF, ...) is kept in `error`, reported once through
    `on_error`, and from then on output is dropped (and counted).

    How a write avoids blocking without changing what others share: O_NONBLOCK is a flag
    of the open file description, which a terminal or pipe shares with the parent shell
    and its other children, so setting it on our stdout could make *their* writes fail
    with EAGAIN, and would stay set if we were killed. Instead:
    - a description that is already non-blocking, a regular file or a block device (they
      never wait for a reader) is written directly;
    - anything else (a pipe, a FIFO, a terminal) is reopened through /proc/self/fd/N: a
      new description of the same pipe or terminal, private to us, with O_NONBLOCK;
    - if that is impossible (a socket, no /proc, no permission), each write is preceded
      by a zero-timeout poll and carries at most PIPE_BUF bytes, which a pipe or socket
      that polls writable takes without waiting.
    """

    def __init__(self, loop: MainLoop, fd: int | None, limit: int = OUTPUT_BACKLOG) -> None:
        self._loop = loop
        self.fd = fd
        self.limit = limit
        self.dropped = 0
        self.error: OSError | None = None
        self.on_error: Callable[[OSError], object] | None = None
        self.on_progress: Handler | None = None
        self._backlog = bytearray()
        self._polling = False
        self._scheduled = False
        self._closed = False
        self._private_fd: int | None = None
        self._guard: select.poll | None = None
        # No descriptor (a stdout closed before we started): the first write fails with
        # EBADF and is reported like any other write error.
        self._write_fd = -1 if fd is None else self._open_for_writing(fd)

    def _open_for_writing(self, fd: int) -> int:
        try:
            mode = os.fstat(fd).st_mode
            if not os.get_blocking(fd) or stat.S_ISREG(mode) or stat.S_ISBLK(mode):
                return fd
        except OSError:
            return fd  # the first write reports why
        try:
            private = os.open(f"/proc/self/fd/{fd}",
                              os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            private = None
        if private is not None:
            if os.path.samestat(os.fstat(private), os.fstat(fd)):
                self._private_fd = private
                return private
            os.close(private)
        self._guard = select.poll()
        self._guard.register(fd, select.POLLOUT)
        return fd

    @classmethod
    def for_stdout(cls, loop: MainLoop) -> FdWriter:
        # Python leaves sys.stdout None when fd 1 was closed at startup; fd 1 may have
        # been reused since by a descriptor of ours, so it must not be written then.
        return cls(loop, STDOUT_FD if sys.stdout is not None else None)

    @property
    def pending(self) -> int:
        """Bytes written to us and not yet to the descriptor."""
        return len(self._backlog)

    def write(self, data: bytes) -> int:
        if self.error is not None or self._closed:
            self.dropped += len(data)
            return len(data)
        self._backlog += data
        excess = len(self._backlog) - self.limit
        if excess > 0:
            del self._backlog[:excess]
            self.dropped += excess
        if not self._scheduled and not self._polling:
            self._scheduled = True
            self._loop.bh(self._flush_bh)
        return len(data)

    def flush(self) -> None:
        """Hand the descriptor what it takes now, without waiting."""
        if not self._polling and not self._closed:
            self._write_out()

    def _flush_bh(self) -> None:
        self._scheduled = False
        self.flush()

    def _write_out(self) -> None:
        written = 0
        while self._backlog and self.error is None:
            size = WRITE_CHUNK
            if self._guard is not None:
                if not self._guard.poll(0):
                    break
                size = select.PIPE_BUF
            try:
                sent = os.write(self._write_fd, self._backlog[:size])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                self._fail(err)
                break
            del self._backlog[:sent]
            written += sent
        self._set_polling(bool(self._backlog) and self.error is None)
        if written and self.on_progress is not None:
            self.on_progress()

    def _set_polling(self, on: bool) -> None:
        if on != self._polling:
            self._polling = on
            self._loop.set_write_handler(self._write_fd, self._write_out if on else None)

    def _fail(self, err: OSError) -> None:
        self.error = err
        self.dropped += len(self._backlog)
        self._backlog.clear()
        if self.on_error is not None:
            self.on_error(err)

    def drain(self, give_up: Callable[[], bool]) -> None:
        """Serve the loop until the backlog is written, an error ends it, or `give_up()`
        (say, a signal): the end of a run waits for a slow reader, not for a gone one."""
        self.flush()
        while self._backlog and self.error is None and not self._closed and not give_up():
            self._loop.run_once(1.0)

    def close(self) -> None:
        """Stop writing (what is still in the backlog is dropped and counted); the
        descriptor itself stays open, it belongs to whoever gave it."""
        with contextlib.suppress(KeyError, ValueError):
            self._set_polling(False)
        self._closed = True
        self.dropped += len(self._backlog)
        self._backlog.clear()
        if self._private_fd is not None:
            os.close(self._private_fd)
            self._private_fd = None
