"""Free loopback ports for tests — what QEMU's tests/qtest/netdev-socket.c does with
inet_get_free_port, for toynic tests, benchmarks and the demo."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_ports(count: int, kind: socket.SocketKind = socket.SOCK_STREAM) -> list[int]:
    """`count` distinct ports on 127.0.0.1 that were free a moment ago, for `kind` (TCP
    or UDP). All are held open while choosing, so they differ from each other."""
    held = [socket.socket(socket.AF_INET, kind) for _ in range(count)]
    try:
        for s in held:
            s.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that was free a moment ago (for `listen=` netdevs)."""
    return free_ports(1, kind)[0]
