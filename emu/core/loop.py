"""MainLoop — QEMU's main loop (util/main-loop.c, util/aio-posix.c) on asyncio's event loop.

The whole emulator is one thread around one `MainLoop`:

- `set_fd_handler(fd, on_read, on_write)` mirrors `qemu_set_fd_handler`: read and write
  interest are registered independently, so turning write polling on or off never
  touches a read handler (or a pending connect's write handler) that another party set.
  Passing None for a direction removes only that direction. These descriptors sit in
  asyncio's epoll set, but their handlers are called straight from the poll
  (`_DirectEpoll`, QEMU's aio_dispatch_handlers): no asyncio Handle per event, which is
  most of what a lone relayed frame costs. Exceptions are reported as asyncio reports
  a failing callback's. Before it sleeps, the poll keeps looking for events for a while
  (`AdaptivePolling`, QEMU's aio polling): the wake-up a sleeping thread needs costs a
  lone frame more than its trip through toynic, on a VM whose idle vCPUs halt.
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
import math
import os
import select
import selectors
import signal
import time
from collections.abc import Callable
from typing import Any

Handler = Callable[[], object]

# select() takes descriptors below this only (the loop's epoll descriptor is one of the
# first a process opens, so in practice always).
_FD_SETSIZE = 1024
# What an epoll event means for each direction: a hang-up or an error wakes both.
_READ_EVENTS = ~select.EPOLLOUT
_WRITE_EVENTS = ~select.EPOLLIN


def _note_signal(_signum: int, _frame: object) -> None:
    """The Python-level handler of a loop signal: the wakeup pipe already carries it."""


class _DirectEpoll(selectors.EpollSelector):
    """asyncio's selector, sharing its epoll set with `MainLoop`'s descriptors, whose
    events go straight to `serve` instead of becoming asyncio callbacks.

    While only those descriptors fire and nothing was given to asyncio meanwhile (the
    loop sets `asyncio_work` when a handler schedules a callback or timer, or stops it),
    `select` polls again itself until asyncio's deadline: a relay or a guest's socket
    traffic does not go round asyncio's loop once per event."""

    def __init__(self, serve: Callable[[int, int], None]) -> None:
        super().__init__()
        self._serve = serve
        self._direct: dict[int, int] = {}
        self.asyncio_work = False
        self.polling = AdaptivePolling()

    def set_direct(self, fd: int, mask: int) -> None:
        """Poll `fd` for `mask` (EPOLLIN/EPOLLOUT bits; 0 stops polling it)."""
        current = self._direct.get(fd, 0)
        if mask == current:
            return
        epoll = self._selector
        if not mask:
            del self._direct[fd]
            with contextlib.suppress(OSError):  # already closed: epoll forgot it then
                epoll.unregister(fd)
            return
        if current:
            epoll.modify(fd, mask)
        else:
            epoll.register(fd, mask)
        self._direct[fd] = mask

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        remaining = timeout
        fd_to_key = self._fd_to_key
        serve = self._serve
        ready: list[tuple[selectors.SelectorKey, int]] = []
        self.asyncio_work = False
        while True:
            try:
                events = self._poll(remaining, len(fd_to_key) + len(self._direct) or 1)
            except InterruptedError:
                return ready
            for fd, event in events:
                key = fd_to_key.get(fd)
                if key is None:
                    serve(fd, event)
                    continue
                mask = 0
                if event & ~select.EPOLLIN:
                    mask |= selectors.EVENT_WRITE
                if event & ~select.EPOLLOUT:
                    mask |= selectors.EVENT_READ
                ready.append((key, mask & key.events))
            if ready or self.asyncio_work or not events:
                return ready
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return ready

    def _poll(self, remaining: float | None, most: int) -> list[tuple[int, int]]:
        """epoll's events within `remaining` seconds (None: no limit): looked for without
        sleeping first, for as long as `polling` says, then slept for."""
        poll = self._selector.poll
        if remaining is not None and remaining <= 0:
            return poll(0.0, most)
        start = time.monotonic_ns()
        window = self.polling.window_ns
        if window:
            if remaining is not None:
                window = min(window, int(remaining * 1e9))
            end = start + window
            while True:
                events = poll(0.0, most)
                if events:
                    return events
                now = time.monotonic_ns()
                if now >= end:
                    break
                # a peer waiting for this CPU (the process about to answer) goes first
                os.sched_yield()
            if remaining is not None:
                remaining -= (now - start) / 1e9
                if remaining <= 0:
                    self.polling.blocked(now - start, False)
                    return []
        events = self._sleep(remaining, most)
        self.polling.blocked(time.monotonic_ns() - start, bool(events))
        return events

    def _sleep(self, remaining: float | None, most: int) -> list[tuple[int, int]]:
        """epoll_wait counts in whole milliseconds, which would stretch a guest's short
        timer (a 5 us delay) to a millisecond: a shorter wait sleeps in select() on the
        epoll descriptor itself, to the microsecond, then collects the events."""
        epoll = self._selector
        if remaining is not None and remaining < 1e-3 and epoll.fileno() < _FD_SETSIZE:
            readable, _, _ = select.select([epoll.fileno()], [], [], remaining)
            return epoll.poll(0.0, most) if readable else []
        return epoll.poll(_epoll_wait(remaining), most)


class AdaptivePolling:
    """How long the loop looks for events before it sleeps (QEMU's adaptive polling,
    util/aio-posix.c, with an iothread's poll-max-ns, poll-grow and poll-shrink).

    A thread that sleeps in epoll_wait costs the next event a wake-up, and on a virtual
    machine whose idle vCPU halts that costs more than a frame's whole trip through a
    relay. So after an event the loop keeps polling, without sleeping, for `window_ns`:
    doubled (from `START_NS`, up to `MAX_NS`) whenever the next event came within
    `MAX_NS` of the last wait's start, so that polling would have caught it; halved, and
    dropped below `START_NS` to nothing, whenever a wait took longer or ended without
    an event, so a loop whose events are rare soon polls no more."""

    START_NS = 4_000
    MAX_NS = 64_000

    def __init__(self) -> None:
        self.window_ns = 0

    def blocked(self, waited_ns: int, got_events: bool) -> None:
        """A wait (polling plus sleeping) ended after `waited_ns`."""
        if got_events and waited_ns <= self.MAX_NS:
            self.window_ns = min(self.MAX_NS, max(self.START_NS, 2 * self.window_ns))
        else:
            self.window_ns //= 2
            if self.window_ns < self.START_NS:
                self.window_ns = 0


def _epoll_wait(timeout: float | None) -> float:
    """epoll's timeout for a selector's: -1 waits for ever, and a wait is rounded up to
    whole milliseconds (epoll_wait's unit), so that it lasts at least `timeout`."""
    if timeout is None:
        return -1.0
    if timeout <= 0:
        return 0.0
    return math.ceil(timeout * 1e3) * 1e-3


class MainLoop:
    """One event loop: fd handlers, bottom halves and host timers."""

    def __init__(self) -> None:
        self._epoll = _DirectEpoll(self._serve)
        self._aio = asyncio.SelectorEventLoop(self._epoll)
        self._readers: dict[int, Handler] = {}
        self._writers: dict[int, Handler] = {}
        self._wake_on_event = False
        # True while a handler runs; the callbacks `soon` queued meanwhile.
        self._in_handler = False
        self._after: list[tuple[Callable[..., object], tuple[object, ...]]] = []
        # Goes up before each handler, bottom half and `soon` callback runs: a party that
        # finds the value it noted knows it is still inside the same callback.
        self.turn = 0
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
        self._set_one(fd, on_read, self._readers)
        self._set_one(fd, on_write, self._writers)

    def set_read_handler(self, fd: int, on_read: Handler | None) -> None:
        self._set_one(fd, on_read, self._readers)

    def set_write_handler(self, fd: int, on_write: Handler | None) -> None:
        self._set_one(fd, on_write, self._writers)

    def _set_one(self, fd: int, handler: Handler | None, table: dict[int, Handler]) -> None:
        if handler is table.get(fd):
            return
        if handler is None:
            del table[fd]
        else:
            table[fd] = handler
        mask = (select.EPOLLIN if fd in self._readers else 0) | (
            select.EPOLLOUT if fd in self._writers else 0)
        self._epoll.set_direct(fd, mask)

    def remove_fd(self, fd: int) -> None:
        """Forget every handler of `fd` (call before closing it)."""
        self.set_fd_handler(fd, None, None)

    def _serve(self, fd: int, event: int) -> None:
        """One descriptor's event, from the poll: its read handler, then its write handler
        (both on a hang-up or error), each looked up now, so a handler removed by one run
        earlier in the same poll is not called."""
        if event & _READ_EVENTS:
            handler = self._readers.get(fd)
            if handler is not None:
                # _dispatch written out: every frame a socket brings in starts here.
                self.turn += 1
                self._in_handler = True
                try:
                    try:
                        handler()
                    finally:
                        self._in_handler = False
                        if self._after:
                            self._run_after()
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._report(handler, exc)
                if self._wake_on_event:
                    self.stop()
        if event & _WRITE_EVENTS:
            handler = self._writers.get(fd)
            if handler is not None:
                try:
                    self._dispatch(handler)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._report(handler, exc)

    def _report(self, handler: Handler, exc: BaseException) -> None:
        """A failing fd handler is reported as asyncio reports a failing callback."""
        self._aio.call_exception_handler(
            {"message": f"Exception in fd handler {handler!r}", "exception": exc})

    def _dispatch(self, fn: Callable[..., object], *args: object) -> None:
        self.turn += 1
        self._in_handler = True
        try:
            fn(*args)
        finally:
            self._in_handler = False
            if self._after:
                self._run_after()
        if self._wake_on_event:
            # A waiter in run_once() re-checks its condition after every event.
            self.stop()

    def _run_after(self) -> None:
        after = self._after
        self._after = []
        for index, (fn, args) in enumerate(after):
            self.turn += 1
            try:
                fn(*args)
            except BaseException:
                # The rest still run, on the next turn, as if scheduled with bh().
                for later, later_args in after[index + 1:]:
                    self.bh(later, *later_args)
                raise

    def bh(self, fn: Callable[..., object], *args: object) -> asyncio.Handle:
        self._epoll.asyncio_work = True
        return self._aio.call_soon(self._dispatch, fn, *args)

    def soon(self, fn: Callable[..., object], *args: object) -> None:
        """Run `fn` right after the current handler (see the module docstring)."""
        if self._in_handler:
            self._after.append((fn, args))
        else:
            self.bh(fn, *args)

    def call_later(
        self, seconds: float, fn: Callable[..., object], *args: object
    ) -> asyncio.TimerHandle:
        self._epoll.asyncio_work = True
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
        self._epoll.asyncio_work = True
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
