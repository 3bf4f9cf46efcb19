"""Every stream socket the toynic relay process opens has TCP_NODELAY — accepted ones
included, which QEMU 7.2's net/socket.c leaves with Nagle on (docs/quirks.md Q1), costing a
delayed-ACK stall whenever two frames go out back to back.

The options are read from the running process itself: its descriptors are duplicated
with pidfd_getfd(2) and queried with getsockopt, so nothing is inferred."""

from __future__ import annotations

import socket

from tests.integration.conftest import start_emulator
from tests.netsupport import (
    LOOPBACK,
    connect,
    foreign_tcp_sockets,
    free_ports,
    hub_args,
    pump,
    record,
    wait_accepted,
    wait_for,
    wait_listening,
)


def test_accepted_and_connecting_sockets_have_nodelay() -> None:
    p_a, p_b = free_ports(2)
    upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    upstream.bind((LOOPBACK, 0))
    upstream.listen(1)
    up_port = upstream.getsockname()[1]
    with upstream, start_emulator(
            "-netdev", f"socket,id=a,listen={LOOPBACK}:{p_a}",
            "-netdev", f"socket,id=b,listen={LOOPBACK}:{p_b}",
            "-netdev", f"socket,id=c,connect={LOOPBACK}:{up_port}",
            *hub_args("a", "b", "c")) as proc:
        wait_listening(proc.pid, p_a)
        wait_listening(proc.pid, p_b)
        upstream.settimeout(15.0)
        c_peer, _ = upstream.accept()
        a = connect(p_a)
        b = connect(p_b)
        with a, b, c_peer:
            wait_accepted(proc.pid, p_a, a.getsockname()[1])
            wait_accepted(proc.pid, p_b, b.getsockname()[1])
            # Traffic first: options must hold on sockets in use, not just fresh ones.
            got = pump({a: record(b"hello")}, {b: 1, c_peer: 1}, timeout=15.0)
            assert got[b] == [b"hello"] and got[c_peer] == [b"hello"]

            def data_sockets() -> list:
                found = [s for s in foreign_tcp_sockets(proc.pid) if not s.listening]
                return found if len(found) == 3 else []

            found = wait_for(data_sockets, 10.0, "toynic's three data sockets")
            peers = sorted(s.remote[1] for s in found if s.remote)
            assert peers == sorted([a.getsockname()[1], b.getsockname()[1], up_port])
            without = [s for s in found if not s.nodelay]
            assert not without, f"TCP_NODELAY off on {without}"
