"""Socket addresses and multicast sockets — QEMU's parse_host_port (net/util.c) and
net_socket_mcast_create (net/socket.c).

`host:port` splits at the first colon; an empty host means 0.0.0.0; a host starting
with a digit is read like inet_aton (`127.1` is 127.0.0.1), anything else is resolved by
name. The port is read like C's strtol with base 0 (`0x50`, octal `010`, trailing text
ignored); unlike the seed, a port outside 0..65535 is an error instead of wrapping.
IPv4 only, as in QEMU's socket netdev.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct

from emu.core.errors import UserError
from emu.core.opts import shown

Address = tuple[str, int]

_STRTOL = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def parse_port(text: str) -> int:
    match = _STRTOL.match(text)
    if match is None:
        raise UserError(f"port number '{shown(text)}' is invalid")
    digits = match.group(2)
    out_of_range = UserError(f"port number '{shown(text)}' is out of range (0..65535)")
    # Leading zeros aside, no port has more than 6 digits (octal); and int() refuses
    # decimal strings of thousands of digits.
    if len(digits.lstrip("0xX")) > 6:
        raise out_of_range
    if digits[:2].lower() == "0x":
        value = int(digits, 16)
    else:
        value = int(digits, 8 if digits[0] == "0" else 10)
    if match.group(1) == "-":
        value = -value
    if not 0 <= value <= 0xFFFF:
        raise out_of_range
    return value


def parse_ipv4(host: str, what: str = "host address") -> str:
    """A dotted IPv4 address from `host` (inet_aton forms, or a resolvable name)."""
    if host == "":
        return "0.0.0.0"
    if host[0] in "0123456789":
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except (OSError, ValueError):
            # ValueError: a NUL or an undecodable byte, which inet_aton cannot even take.
            raise UserError(f"{what} '{shown(host)}' is not a valid IPv4 address") from None
    name = host_name(host, what)
    try:
        return socket.gethostbyname(name)
    except OSError:
        raise UserError(f"can't resolve {what} '{shown(host)}'") from None


def host_name(host: str, what: str = "host address") -> str:
    """`host` as the ASCII name a resolver takes (IDNA for non-ASCII names), checked
    first, so that a malformed name is a UserError and not the resolver's UnicodeError:
    labels of 1 to 63 characters (one trailing dot allowed), at most 253 in all, no
    spaces or control characters."""
    labels = host.removesuffix(".").split(".")
    if any(not label for label in labels):
        reason = "empty label"
    elif any(len(label) > 63 for label in labels):
        reason = "a label is longer than 63 characters"
    elif len(host) > 253:
        reason = "longer than 253 characters"
    elif any(ch <= " " or ch == "\x7f" for ch in host):
        reason = "space or control character"
    elif host.isascii():
        return host
    else:
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            reason = "not a name IDNA can encode"
    raise UserError(f"{what} '{shown(host)}' is not a valid host name ({reason})")


def parse_host_port(text: str) -> Address:
    host, sep, port = text.partition(":")
    if not sep:
        raise UserError(
            f"host address '{shown(text)}' doesn't contain ':' separating host from port")
    return parse_ipv4(host), parse_port(port)


def format_address(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


def check_multicast(group: str) -> None:
    if not ipaddress.IPv4Address(group).is_multicast:
        packed = struct.unpack(">I", socket.inet_aton(group))[0]
        raise UserError(
            f'specified mcastaddr "{group}" (0x{packed:08x}) does not contain a multicast address'
        )


def os_error(what: str, err: OSError) -> UserError:
    return UserError(f"{what}: {err.strerror or err}")


def udp_socket(local: Address, shown_as: str) -> socket.socket:
    """A UDP socket bound to `local` (errors name the address as `shown_as`, which the
    seed's socket netdev and newer QEMU's dgram netdev print differently)."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as err:
        raise os_error("can't create datagram socket", err) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(local)
    except OSError as err:
        sock.close()
        raise os_error(f"can't bind ip={shown_as} to socket", err) from None
    return sock


def mcast_socket(group: Address, localaddr: str | None) -> socket.socket:
    """A UDP socket bound to the group's address and port, member of the group, hearing
    its own transmissions (IP_MULTICAST_LOOP), sending from `localaddr` if given."""
    check_multicast(group[0])
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as err:
        raise os_error("can't create datagram socket", err) from None
    try:
        step = "can't set socket option SO_REUSEADDR"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        step = f"can't bind ip={group[0]} to socket"
        sock.bind(group)
        step = f"can't add socket to multicast group {group[0]}"
        interface = socket.inet_aton(localaddr or "0.0.0.0")
        sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group[0]) + interface
        )
        step = "can't force multicast message to loopback"
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        if localaddr is not None:
            step = "can't set the default network send interface"
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, interface)
        sock.setblocking(False)
    except OSError as err:
        sock.close()
        raise os_error(step, err) from None
    return sock
