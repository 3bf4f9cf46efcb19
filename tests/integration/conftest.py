"""Fixtures for process-level tests: a toynic frame relay (two `listen=` stream netdevs on
hub 0) running as a real process, and clients connected to it.

`TOYNIC_RELAY_IMPL=qemu` runs the same tests against QEMU's hub relay instead, to check
the tests themselves (QEMU 7.2 is expected to fail the slow-reader and TCP_NODELAY ones).
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.netsupport import (
    Proc,
    connect,
    free_ports,
    relay_args,
    start_qemu,
    start_toynic,
    wait_accepted,
    wait_listening,
)


@dataclass
class Relay:
    """A running relay process and the two ports it listens on."""

    proc: Proc
    ports: tuple[int, int]
    clients: list[socket.socket] = field(default_factory=list)

    def client(self, side: int, timeout: float = 15.0,
               rcvbuf: int | None = None) -> socket.socket:
        """Connect to port `side` (0 or 1) and wait until the relay has accepted us."""
        sock = connect(self.ports[side], rcvbuf=rcvbuf)
        self.clients.append(sock)
        wait_accepted(self.proc.pid, self.ports[side], sock.getsockname()[1], timeout)
        return sock

    def close_clients(self) -> None:
        for sock in self.clients:
            sock.close()
        self.clients.clear()


def start_emulator(*args: str) -> Proc:
    """toynic with these netdev arguments (or QEMU, see the module docstring)."""
    if os.environ.get("TOYNIC_RELAY_IMPL") == "qemu":
        return start_qemu(*args, workdir=Path(tempfile.gettempdir()))
    return start_toynic(*args)


def start_relay() -> Relay:
    ports = free_ports(2)
    proc = start_emulator(*relay_args(*ports))
    with proc.closed_on_failure():
        for port in ports:
            wait_listening(proc.pid, port)
    return Relay(proc, (ports[0], ports[1]))


def running_relay() -> Iterator[Relay]:
    r = start_relay()
    try:
        yield r
    finally:
        r.close_clients()
        r.proc.close()


@pytest.fixture
def relay() -> Iterator[Relay]:
    yield from running_relay()


@pytest.fixture(scope="module")
def shared_relay() -> Iterator[Relay]:
    """One relay for a whole module (tests that leave it as they found it)."""
    yield from running_relay()
