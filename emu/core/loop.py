"""MainLoop — QEMU's main loop (util/main-loop.c, util/aio-posix.c) on asyncio's event loop.

The whole emulator is one thread around one `MainLoop`:

- `set_fd_handler(fd, on_read, on_write)` mirrors `qemu_set_fd_handler`: read and write
  interest are registered independently, so turning write polling on or off never
  touches a read handler (or a pending connect's write handler) that another party set.
  Passing None for a direction removes only that direction.
- `bh(fn)` schedules a bottom half: `fn` runs on the next loop iteration, never inside
  the caller (QEMU's `qemu_bh_schedule`).
- `soon(fn)` is a bottom half for latency: `fn` runs right after the handler now
  running returns, in the same loop turn, without another poll in between (QEMU runs
  the bottom halves an event scheduled in the same `aio_dispatch`). A frame that wakes a
  guest or must go out to a socket does not wait for a whole loop turn. Called outside
  a handler, or from a callback that itself ran this way, it is an ordinary `bh`, so
  two parties waking each other still let the loop poll between rounds.
- `call_later(seconds, fn)` is a host (real-time) timer; virtual-time timers live in
  `emu.core.clock`.
- `run_until(predicate, timeout)` drives the loop until a condition holds or a real-time
  deadline passes — the only way tests wait.
- `set_signal_handler(signum, fn)` runs `fn` on the loop when the signal arrives (QEMU's
  signalfd in `qemu_init_main_loop`). The signal's number travels through a wakeup pipe
  of the loop's own, written without a warning when a burst fills it; `close()` blocks
  the signals, restores the dispositions and the wakeup fd found before, and only then
  closes the pipe, so a signal arriving during the teardown never meets a closed wakeup
  fd (CPython would report EBADF, and could deadlock reporting it from nested handlers).
- `Acceptor` serves a listening socket. When accept() fails for want of descriptors or
  memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the connection stays queued and the socket
  stays readable, so polling it would spin: the Acceptor stops polling, reports once,
  and retries every ACCEPT_RETRY seconds until a connection is taken.
- `FdWriter` is output to a descriptor that never blocks the loop (the console, the
  monitor): bytes wait in a bounded backlog, go out when the descriptor takes them, and
  past the bound the oldest are dropped and counted (see its docstring for how a
  terminal shared with the parent shell is written without blocking).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from typing import Any

Handler = Callable[[], object]

ACCEPT_RETRY = 0.5
# accept() errors that mean "not now" for every connection, not "this one failed".
_STARVED_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# What an FdWriter keeps unwritten by default before it drops the oldest bytes.
OUTPUT_BACKLOG = 1 << 20
# The most one write() call hands the kernel, so one flush never takes long.
WRITE_CHUNK = 1 << 16
STDOUT_FD = 1


def _note_signal(_signum: int, _frame: object) -> None:
    """The Python-level handler of a loop signal: the wakeup pipe already carries it."""


class MainLoop:
    """One event loop: fd handlers, bottom halves and host timers."""

    def __init__(self) -> None:
        self._aio = asyncio.new_event_loop()
        self._readers: dict[int, Handler] = {}
        self._writers: dict[int, Handler] = {}
        self._wake_on_event = False
        # The callbacks `soon` queued while a handler runs; None outside a handler.
        self._after: list[tuple[Callable[..., object], tuple[object, ...]]] | None = None
        self._signal_handlers: dict[int, Handler] = {}
        self._saved_dispositions: dict[int, Any] = {}
        self._saved_wakeup_fd = -1
        self._signal_pipe: tuple[int, int] | None = None

    @property
    def aio(self) -> asyncio.AbstractEventLoop:
        return self._aio

    def own_fds(self) -> set[int]:
        """The descriptors asyncio holds for this loop (the epoll fd and the self-pipe
        that signals wake it through), so that nothing else takes them over."""
        holders = [getattr(self._aio, name, None) for name in ("_selector", "_ssock", "_csock")]
        return {holder.fileno() for holder in holders if holder is not None} | set(
            self._signal_pipe or ())

    def set_fd_handler(
        self, fd: int, on_read: Handler | None, on_write: Handler | None
    ) -> None:
        """Set both directions of interest for `fd` (None switches a direction off)."""
        self._set_one(fd, on_read, self._readers, self._aio.add_reader, self._aio.remove_reader)
        self._set_one(fd, on_write, self._writers, self._aio.add_writer, self._aio.remove_writer)

    def set_read_handler(self, fd: int, on_read: Handler | None) -> None:
        self._set_one(fd, on_read, self._readers, self._aio.add_reader, self._aio.remove_reader)

    def set_write_handler(self, fd: int, on_write: Handler | None) -> None:
        self._set_one(fd, on_write, self._writers, self._aio.add_writer, self._aio.remove_writer)

    def _set_one(
        self,
        fd: int,
        handler: Handler | None,
        table: dict[int, Handler],
        add: Callable[..., object],
        remove: Callable[[int], object],
    ) -> None:
        current = table.get(fd)
        if handler is current:
            return
        if handler is None:
            del table[fd]
            remove(fd)
        else:
            if current is not None:
                remove(fd)
            table[fd] = handler
            add(fd, self._dispatch, handler)

    def remove_fd(self, fd: int) -> None:
        """Forget every handler of `fd` (call before closing it)."""
        self.set_fd_handler(fd, None, None)

    def _dispatch(self, fn: Callable[..., object], *args: object) -> None:
        after: list[tuple[Callable[..., object], tuple[object, ...]]] = []
        self._after = after
        try:
            fn(*args)
        finally:
            self._after = None
            self._run_after(after)
        if self._wake_on_event:
            # A waiter in run_once() re-checks its condition after every event.
            self._aio.stop()

    def _run_after(self, after: list[tuple[Callable[..., object], tuple[object, ...]]]) -> None:
        for index, (fn, args) in enumerate(after):
            try:
                fn(*args)
            except BaseException:
                # The rest still run, on the next turn, as if scheduled with bh().
                for later, later_args in after[index + 1:]:
                    self._aio.call_soon(self._dispatch, later, *later_args)
                raise

    def bh(self, fn: Callable[..., object], *args: object) -> asyncio.Handle:
        return self._aio.call_soon(self._dispatch, fn, *args)

    def soon(self, fn: Callable[..., object], *args: object) -> None:
        """Run `fn` right after the current handler (see the module docstring)."""
        if self._after is None:
            self._aio.call_soon(self._dispatch, fn, *args)
        else:
            self._after.append((fn, args))

    def call_later(
        self, seconds: float, fn: Callable[..., object], *args: object
    ) -> asyncio.TimerHandle:
        return self._aio.call_later(seconds, self._dispatch, fn, *args)

    def run_until(
        self, predicate: Callable[[], bool], timeout: float, step: float = 0.05
    ) -> bool:
        """Run the loop until `predicate()` is true; False if `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.run_once(min(step, remaining))
        return True

    def run_once(self, timeout: float = 0.0) -> None:
        """Wait at most `timeout` seconds for the next event, and run what is ready."""
        waker = self._aio.call_later(timeout, self._aio.stop)
        self._wake_on_event = True
        try:
            self._aio.run_forever()
        finally:
            self._wake_on_event = False
            waker.cancel()

    def run_forever(self) -> None:
        """Serve handlers until `stop()` is called."""
        self._aio.run_forever()

    def stop(self) -> None:
        self._aio.stop()

    def set_signal_handler(self, signum: int, fn: Handler) -> None:
        """Run `fn` on the loop (not inside the interrupted code) when `signum` arrives."""
        if self._signal_pipe is None:
            read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._signal_pipe = (read_fd, write_fd)
            # A burst that fills the pipe loses nothing that matters: one byte per signal
            # number is enough, and the default warning would print once per signal.
            self._saved_wakeup_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
            self.set_read_handler(read_fd, self._on_signal_pipe)
        if signum not in self._saved_dispositions:
            self._saved_dispositions[signum] = signal.signal(signum, _note_signal)
        self._signal_handlers[signum] = fn

    def _on_signal_pipe(self) -> None:
        assert self._signal_pipe is not None
        try:
            data = os.read(self._signal_pipe[0], 4096)
        except BlockingIOError:
            return
        for signum in dict.fromkeys(data):
            handler = self._signal_handlers.get(signum)
            if handler is not None:
                handler()

    def _release_signals(self) -> None:
        if self._signal_pipe is None:
            return
        signums = set(self._saved_dispositions)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
        try:
            for signum, disposition in self._saved_dispositions.items():
                signal.signal(signum, signal.SIG_DFL if disposition is None else disposition)
            signal.set_wakeup_fd(self._saved_wakeup_fd)
            read_fd, write_fd = self._signal_pipe
            self.set_read_handler(read_fd, None)
            os.close(read_fd)
            os.close(write_fd)
            # One that came while blocked was sent to this loop: it must not reach the
            # disposition just restored (standard signals do not queue: one each at most).
            for _ in signums:
                if signal.sigtimedwait(signums, 0) is None:
                    break
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        self._signal_pipe = None
        self._signal_handlers.clear()
        self._saved_dispositions.clear()

    def close(self) -> None:
        self._release_signals()
        for fd in list(self._readers) + list(self._writers):
            with contextlib.suppress(KeyError, ValueError):
                self.remove_fd(fd)
        self._aio.close()


class Acceptor:
    """Takes connections from a listening socket for its owner (who keeps the socket):
    `on_accept(sock, peer)` per connection, `report(text)` for one line about a failure."""

    def __init__(self, loop: MainLoop, listen: socket.socket,
                 on_accept: Callable[[socket.socket, Any], object],
                 report: Callable[[str], object]) -> None:
        self._loop = loop
        self._fd = listen.fileno()
        self._listen = listen
        self._on_accept = on_accept
        self._report = report
        self._handler = self._accept
        self._accepting = False
        self._retry: asyncio.TimerHandle | None = None
        self._starved = False

    def set_accepting(self, on: bool) -> None:
        """Take connections (on), or leave them waiting in the kernel's backlog (off)."""
        self._accepting = on
        if not on and self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._poll()

    def _poll(self) -> None:
        wanted = self._accepting and self._retry is None
        self._loop.set_read_handler(self._fd, self._handler if wanted else None)

    def _accept(self) -> None:
        try:
            sock, peer = self._listen.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            if err.errno in _STARVED_ERRNOS:
                self._back_off(err)
            else:
                self._report(f"accept failed: {err.strerror or err}")
            return
        self._starved = False
        self._on_accept(sock, peer)

    def _back_off(self, err: OSError) -> None:
        if not self._starved:
            self._starved = True
            self._report(f"accept failed: {err.strerror or err}; "
                         f"retrying every {ACCEPT_RETRY} s")
        self._retry = self._loop.call_later(ACCEPT_RETRY, self._retry_now)
        self._poll()

    def _retry_now(self) -> None:
        self._retry = None
        self._poll()
        if self._accepting:
            self._accept()

    def close(self) -> None:
        """Stop for good (before the owner closes the socket)."""
        self._accepting = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        with contextlib.suppress(KeyError, ValueError):
            self._loop.set_read_handler(self._fd, None)


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
