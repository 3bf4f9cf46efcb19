"""Acceptor — a listening socket served on the main loop (QEMU's qio_net_listener on the
main context, as net/socket.c and chardev/char-socket.c use it).

When accept() fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)
the connection stays queued and the socket stays readable, so polling it would spin: the
Acceptor stops polling, reports once, and retries every ACCEPT_RETRY seconds until a
connection is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable
from typing import Any

from emu.core.loop import MainLoop

ACCEPT_RETRY = 0.5
# accept() errors that mean "not now" for every connection, not "this one failed".
_STARVED_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


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
