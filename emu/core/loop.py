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

The main loop's two helpers for descriptors live beside it: `emu.core.acceptor`
(listening sockets) and `emu.core.fdwriter` (output that never blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import Any

Handler = Callable[[], object]



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
