"""`-netdev socket` — QEMU's net_init_socket (net/socket.c): option checks and mode setup.

Modes: `listen=[host]:port`, `connect=host:port`, `fd=N` (stream or datagram),
`mcast=maddr:port[,localaddr=ip]`, `udp=rhost:rport,localaddr=lhost:lport`.
The three validation texts are the seed's, word for word; every other failure is a
UserError naming what went wrong. Stream modes live in socket_stream.py, datagram
modes in socket_dgram.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import Opts, shown
from netdev.client import NetClient
from netdev.fd_param import take_fd
from netdev.sockaddr import (
    format_address,
    mcast_socket,
    parse_host_port,
    udp_socket,
)
from netdev.socket_dgram import DgramSocket
from netdev.socket_stream import StreamSocket

SOCKET_KEYS = frozenset({"type", "id", "fd", "listen", "connect", "mcast", "localaddr", "udp"})
MODES = ("fd", "listen", "connect", "mcast", "udp")


def create_socket_netdev(loop: MainLoop, name: str, opts: Opts,
                         taken_fds: Mapping[int, str] | None = None) -> NetClient:
    """The socket netdev `opts` asks for; `taken_fds` maps descriptors the process
    already uses to what uses them, and `fd=` may not name one of those."""
    opts.check_keys(SOCKET_KEYS)
    given = [mode for mode in MODES if opts.get(mode) is not None]
    if len(given) != 1:
        raise UserError("exactly one of fd=, listen=, connect=, mcast= or udp= is required")
    localaddr = opts.get("localaddr")
    if localaddr is not None and given[0] not in ("mcast", "udp"):
        raise UserError("localaddr= is only valid with mcast= or udp=")
    mode = given[0]
    value = opts.require(mode)
    if mode == "listen":
        return StreamSocket.listen(loop, name, parse_host_port(value))
    if mode == "connect":
        return StreamSocket.connect(loop, name, parse_host_port(value))
    if mode == "fd":
        return _from_fd(loop, name, value, taken_fds or {})
    if mode == "mcast":
        group = parse_host_port(value)
        local = None if localaddr is None else _parse_plain_ipv4(localaddr)
        sock = mcast_socket(group, local)
        return DgramSocket(loop, name, sock, group, f"socket: mcast={format_address(group)}")
    if localaddr is None:
        raise UserError("localaddr= is mandatory with udp=")
    return _udp(loop, name, parse_host_port(value), parse_host_port(localaddr))


def _parse_plain_ipv4(text: str) -> str:
    try:
        return socket.inet_ntoa(socket.inet_aton(text))
    except (OSError, ValueError):
        # ValueError: a NUL or an undecodable byte, which inet_aton cannot even take.
        raise UserError(f"localaddr '{shown(text)}' is not a valid IPv4 address") from None


def _udp(loop: MainLoop, name: str, remote: tuple[str, int], local: tuple[str, int]) -> NetClient:
    sock = udp_socket(local, format_address(local))
    return DgramSocket(loop, name, sock, remote, f"socket: udp={format_address(remote)}")


def _from_fd(loop: MainLoop, name: str, text: str, taken_fds: Mapping[int, str]) -> NetClient:
    fd = take_fd(text, taken_fds, "socket", context=f"{name}: ")
    try:
        sock = socket.socket(fileno=fd)
    except OSError as err:
        # Not a socket: the fd is left open, it may belong to someone else.
        raise UserError(f"fd={fd} is not a socket: {err.strerror}") from None
    try:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise UserError(f"fd={fd} is a listening socket; fd= takes a connected socket "
                            "(listen= accepts connections)")
        if sock.type == socket.SOCK_DGRAM:
            return _clone_dgram(loop, name, sock, fd)
        if sock.type != socket.SOCK_STREAM:
            raise UserError(
                f"socket type={int(sock.type)} for fd={fd} must be either SOCK_DGRAM or SOCK_STREAM"
            )
        return StreamSocket.from_socket(loop, name, sock)
    except BaseException:
        sock.close()
        raise


def _clone_dgram(loop: MainLoop, name: str, sock: socket.socket, fd: int) -> NetClient:
    """Replace an inherited datagram fd by our own multicast socket on the same group and
    port, under the same fd number (the seed's getsockname cloning, docs/qemu-behaviour.md §2.4)."""
    if sock.family != socket.AF_INET:
        raise UserError(f"init_dgram: fd={fd} is not an IPv4 socket, cannot clone it")
    try:
        group = sock.getsockname()
    except OSError as err:
        raise UserError(f"init_dgram: fd={fd} failed getsockname(): {err.strerror}") from None
    if group[0] == "0.0.0.0":
        raise UserError(f"init_dgram: fd={fd} unbound, cannot setup multicast dst addr")
    clone = mcast_socket((group[0], group[1]), None)
    os.dup2(clone.fileno(), fd)
    clone.close()
    cloned = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, fileno=fd)
    sock.detach()
    info = f"socket: fd={fd} (cloned mcast={format_address(group)})"
    return DgramSocket(loop, name, cloned, (group[0], group[1]), info)
