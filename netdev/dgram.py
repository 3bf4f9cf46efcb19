"""`-netdev dgram` — QEMU's net/dgram.c (net_init_dgram, net_dgram_mcast_init) over
toynic's datagram data path (`netdev.socket_dgram.DgramSocket`: one datagram per frame).

QEMU's combinations: `remote` an IPv4 multicast group (optional inet `local`: the
interface address to send from) → `mcast=G:P`; inet `local` + inet `remote` → unicast UDP,
`udp=L:LP/R:RP`; unix `local` + unix `remote` → datagrams between two socket files,
`udp=LPATH:RPATH`; `local.type=fd` alone → an inherited datagram socket (sends with
send(), so it must be connected), `fd=N inet|unix`. Everything else is refused with
QEMU's texts. Like QEMU's dgram, inet here is IPv4 only.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import Opts, shown
from netdev.fd_param import take_fd
from netdev.sockaddr import (
    Address,
    format_address,
    mcast_socket,
    os_error,
    parse_ipv4,
    parse_port,
    udp_socket,
)
from netdev.socket_dgram import DgramSocket
from netdev.socketaddress import SocketAddress, parse_socket_address, remove_stale_socket

DGRAM_KEYS = frozenset({"type", "id"})


def create_dgram_netdev(loop: MainLoop, name: str, opts: Opts,
                        taken_fds: Mapping[int, str] | None = None) -> DgramSocket:
    """The dgram netdev `opts` asks for (QEMU's net_init_dgram)."""
    opts.check_keys(DGRAM_KEYS | {key for key in opts.values
                                  if key.startswith(("local.", "remote."))})
    remote = parse_socket_address(opts, "remote", required=False)
    local = parse_socket_address(opts, "local", required=False)
    if remote is not None and remote.kind == "inet":
        group = _inet(remote)
        if ipaddress.IPv4Address(group[0]).is_multicast:
            return _mcast(loop, name, group, local)
    if local is None:
        raise UserError("dgram requires local= parameter")
    if remote is not None:
        if local.kind == "fd":
            raise UserError("don't set remote with local.fd")
        if remote.kind != local.kind:
            raise UserError("remote and local types must be the same")
    elif local.kind != "fd":
        raise UserError("type=inet or type=unix requires remote parameter")
    if local.kind == "inet":
        assert remote is not None
        return _udp(loop, name, _inet(local), _inet(remote))
    if local.kind == "unix":
        assert remote is not None
        return _unix(loop, name, local, remote)
    return _fd(loop, name, local.fd, taken_fds or {})


def _inet(addr: SocketAddress) -> Address:
    """QEMU's convert_host_port: an IPv4 address (or name) and a numeric port."""
    return parse_ipv4(addr.host), parse_port(addr.port)


def _mcast(loop: MainLoop, name: str, group: Address, local: SocketAddress | None) -> DgramSocket:
    if local is not None and local.kind != "inet":
        raise UserError("only support inet or fd type for local")
    localaddr = None
    if local is not None:
        try:
            localaddr = socket.inet_ntoa(socket.inet_aton(local.host))
        except (OSError, ValueError):
            raise UserError(f"localaddr '{shown(local.host)}' is not a valid IPv4 "
                            "address") from None
    sock = mcast_socket(group, localaddr)
    client = DgramSocket(loop, name, sock, group, f"mcast={format_address(group)}")
    client.model = "dgram"
    return client


def _udp(loop: MainLoop, name: str, local: Address, remote: Address) -> DgramSocket:
    sock = udp_socket(local, local[0])
    client = DgramSocket(loop, name, sock, remote,
                         f"udp={format_address(local)}/{format_address(remote)}")
    client.model = "dgram"
    return client


def _unix(loop: MainLoop, name: str, local: SocketAddress, remote: SocketAddress) -> DgramSocket:
    remove_stale_socket(local, "failed to unlink socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(local.unix_address())
    except OSError as err:
        sock.close()
        raise os_error(f"can't bind unix={shown(local.path)} to socket", err) from None
    client = DgramSocket(loop, name, sock, remote.unix_address(),
                         f"udp={local.path}:{remote.path}")
    client.model = "dgram"
    return client


def _fd(loop: MainLoop, name: str, fd: int, taken_fds: Mapping[int, str]) -> DgramSocket:
    take_fd(str(fd), taken_fds, "socket", context=f"{name}: ")
    try:
        sock = socket.socket(fileno=fd)
    except OSError as err:
        raise UserError(f"Unable to query local socket address: {err.strerror}") from None
    if sock.type != socket.SOCK_DGRAM:
        sock.detach()
        raise UserError(f"local.str={fd} is not a datagram socket")
    family = "unix" if sock.family == socket.AF_UNIX else "inet"
    client = DgramSocket(loop, name, sock, None, f"fd={fd} {family}")
    client.model = "dgram"
    return client
