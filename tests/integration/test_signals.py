"""SIGTERM and SIGINT stop the toynic relay cleanly: exit status 0, every socket closed,
so connected clients see EOF and the ports stop listening (QEMU: net_cleanup at exit)."""

from __future__ import annotations

import select
import signal
import socket
import time

import pytest

from tests.integration.conftest import Relay
from tests.netsupport import LOOPBACK, pump, record


def wait_eof(sock: socket.socket, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no EOF from the relay"
        ready, _, _ = select.select([sock], [], [], remaining)
        if ready:
            assert sock.recv(65536) == b"", "data or reset instead of an orderly EOF"
            return


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero_and_closes_sockets(relay: Relay, signum: int) -> None:
    a = relay.client(0)
    b = relay.client(1)
    assert pump({a: record(b"before")}, {b: 1}, timeout=15.0)[b] == [b"before"]
    relay.proc.send_signal(signum)
    assert relay.proc.wait(15.0) == 0, relay.proc.describe()
    wait_eof(a)
    wait_eof(b)
    for port in relay.ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK, port), timeout=5.0).close()
    assert "Traceback" not in relay.proc.stderr
