"""QAPI's SocketAddress (qapi/sockets.json) as `-netdev stream` / `-netdev dgram` spell it
(`addr.type=inet,addr.host=...`), and the sockets it names — QEMU's util/qemu-sockets.c
(inet_listen_saddr, inet_connect_saddr, unix_listen_saddr, unix_connect_saddr,
socket_uri, socket_sockaddr_to_address).

`parse_socket_address(opts, "addr")` reads the keys under one prefix with QEMU's
keyval texts (`Parameter 'addr' is missing`, `Parameter 'addr.host' is unexpected`).
An inet host may be a name, an IPv4 or an IPv6 address (`::1`, also written `[::1]`);
`addr.ipv4`/`addr.ipv6` pick the family. `addr.type=fd` names a descriptor by number
(toynic has no `getfd`, so no named descriptors); vsock is not supported.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emu.core.errors import UserError
from emu.core.opts import Opts, shown
from netdev.sockaddr import os_error

INET_KEYS = frozenset({"host", "port", "numeric", "to", "ipv4", "ipv6", "keep-alive"})
UNIX_KEYS = frozenset({"path", "abstract", "tight"})
FD_KEYS = frozenset({"str"})
_KEYS = {"inet": INET_KEYS, "unix": UNIX_KEYS, "fd": FD_KEYS}
FD_MAX = 0x7FFFFFFF
# sizeof(sockaddr_un.sun_path) on Linux.
UNIX_PATH_MAX = 108


@dataclass(frozen=True)
class SocketAddress:
    """One QAPI SocketAddress: `kind` is inet, unix or fd."""

    kind: str
    host: str = ""
    port: str = ""
    to: int | None = None
    ipv4: bool | None = None
    ipv6: bool | None = None
    numeric: bool = False
    keep_alive: bool = False
    path: str = ""
    abstract: bool = False
    tight: bool = True
    fd: int = -1

    def family(self) -> int:
        """The address family `addr.ipv4`/`addr.ipv6` ask for (AF_UNSPEC: either)."""
        if self.ipv4 is True and self.ipv6 is not True:
            return socket.AF_INET
        if self.ipv6 is True and self.ipv4 is not True:
            return socket.AF_INET6
        if self.ipv4 is False and self.ipv6 is None:
            return socket.AF_INET6
        if self.ipv6 is False and self.ipv4 is None:
            return socket.AF_INET
        return socket.AF_UNSPEC

    def unix_address(self) -> str | bytes:
        """The sun_path Python's socket module takes: abstract names start with NUL; a
        non-tight abstract address is padded to the whole sun_path, as C code passing
        sizeof(struct sockaddr_un) would make it."""
        if not self.abstract:
            return self.path
        name = b"\0" + os.fsencode(self.path)
        return name if self.tight else name.ljust(UNIX_PATH_MAX, b"\0")

    def describe(self) -> str:
        """host:port or the path, as QEMU's error texts quote the address."""
        if self.kind == "inet":
            return f"{self.host}:{self.port}"
        if self.kind == "unix":
            return self.path
        return str(self.fd)


def parse_socket_address(opts: Opts, prefix: str, required: bool = True) -> SocketAddress | None:
    """The SocketAddress under `prefix.` in `opts` (None if absent and not `required`)."""
    keys = [key for key in opts.values if key.startswith(prefix + ".")]
    if not keys:
        if required:
            raise UserError(f"Parameter '{prefix}' is missing")
        return None
    kind = opts.require(f"{prefix}.type")
    allowed = _KEYS.get(kind)
    if allowed is None:
        if kind == "vsock":
            raise UserError(f"Parameter '{prefix}.type': vsock is not supported by toynic")
        raise UserError(f"Parameter '{prefix}.type' does not accept value '{shown(kind)}'")
    for key in keys:
        if key[len(prefix) + 1:] not in allowed | {"type"}:
            raise UserError(f"Parameter '{key}' is unexpected")

    def flag(name: str) -> bool | None:
        key = f"{prefix}.{name}"
        return opts.get_bool(key) if opts.get(key) is not None else None

    if kind == "inet":
        host = opts.require(f"{prefix}.host")
        port = opts.require(f"{prefix}.port")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return SocketAddress("inet", host=host, port=port, to=_port_number(opts, f"{prefix}.to"),
                             ipv4=flag("ipv4"), ipv6=flag("ipv6"),
                             numeric=bool(flag("numeric")), keep_alive=bool(flag("keep-alive")))
    if kind == "unix":
        path = opts.require(f"{prefix}.path")
        if len(os.fsencode(path)) + (1 if flag("abstract") else 0) >= UNIX_PATH_MAX:
            raise UserError(f"UNIX socket path '{shown(path)}' is too long "
                            f"(less than {UNIX_PATH_MAX} bytes)")
        tight = flag("tight")
        return SocketAddress("unix", path=path, abstract=bool(flag("abstract")),
                             tight=tight is not False)
    text = opts.require(f"{prefix}.str")
    if not text.isdecimal() or not text.isascii() or int(text) > FD_MAX:
        raise UserError(f"Invalid file descriptor number '{shown(text)}'")
    return SocketAddress("fd", fd=int(text))


def _port_number(opts: Opts, key: str) -> int | None:
    value = opts.get(key)
    if value is None:
        return None
    if not value.isdecimal() or not value.isascii() or int(value) > 0xFFFF:
        raise UserError(f"Parameter '{key}' expects a port number, not '{shown(value)}'")
    return int(value)


# -- inet ------------------------------------------------------------------------------------

def resolve(addr: SocketAddress, kind: int, passive: bool) -> list[tuple[int, Any]]:
    """(family, sockaddr) pairs for an inet address, as getaddrinfo gives them."""
    flags = (socket.AI_PASSIVE if passive else 0) | (socket.AI_NUMERICHOST if addr.numeric else 0)
    try:
        infos = socket.getaddrinfo(addr.host or None, addr.port or "0", addr.family(), kind,
                                   0, flags)
    except (socket.gaierror, UnicodeError) as err:
        reason = err.strerror if isinstance(err, socket.gaierror) else "not a valid name"
        raise UserError(f"address resolution failed for {shown(addr.describe())}: "
                        f"{reason}") from None
    except OSError as err:
        raise os_error(f"address resolution failed for {shown(addr.describe())}", err) from None
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def inet_listen(addr: SocketAddress) -> socket.socket:
    """A listening TCP socket on the first address and port (up to `addr.to`) that binds."""
    last: OSError | None = None
    for family, sockaddr in resolve(addr, socket.SOCK_STREAM, passive=True):
        first = sockaddr[1]
        for port in range(first, max(first, addr.to or first) + 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    # "::" serves IPv4 too unless only IPv6 was asked for.
                    v6only = addr.ipv6 is True and addr.ipv4 is not True
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
                sock.bind((sockaddr[0], port, *sockaddr[2:]))
                sock.listen(1)
            except OSError as err:
                sock.close()
                last = err
                continue
            return sock
    raise os_error("Failed to find an available port", last or OSError("no address"))


def remove_stale_socket(addr: SocketAddress, failure: str) -> None:
    """Remove what a previous run left at a unix address's path before binding it (an
    abstract name has no file); `failure` starts the error text (QEMU's differ)."""
    if addr.abstract:
        return
    try:
        os.unlink(addr.path)
    except FileNotFoundError:
        pass
    except OSError as err:
        raise os_error(f"{failure} {shown(addr.path)}", err) from None


def unix_listen(addr: SocketAddress) -> socket.socket:
    """A listening unix socket; a stale socket file at the path is removed first."""
    remove_stale_socket(addr, "Failed to unlink socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(addr.unix_address())
        sock.listen(1)
    except OSError as err:
        sock.close()
        raise os_error(f"Failed to bind socket to {shown(addr.path)}", err) from None
    return sock


# -- what getpeername/getsockname say, as QAPI and as a URI -------------------------------------

def sockaddr_to_qapi(family: int, sockaddr: Any) -> dict[str, Any]:
    """QEMU's socket_sockaddr_to_address: the SocketAddress an event carries."""
    if family in (socket.AF_INET, socket.AF_INET6):
        out: dict[str, Any] = {"type": "inet", "host": sockaddr[0], "port": str(sockaddr[1])}
        out["ipv4" if family == socket.AF_INET else "ipv6"] = True
        return out
    if isinstance(sockaddr, bytes) or (isinstance(sockaddr, str) and sockaddr.startswith("\0")):
        raw = sockaddr if isinstance(sockaddr, bytes) else os.fsencode(sockaddr)
        return {"type": "unix", "path": os.fsdecode(raw[1:].rstrip(b"\0")),
                "abstract": True, "tight": not raw.endswith(b"\0")}
    return {"type": "unix", "path": sockaddr or ""}


def qapi_uri(addr: Mapping[str, Any]) -> str:
    """QEMU's socket_uri: tcp:HOST:PORT (IPv6 hosts in brackets), unix:PATH, fd:N."""
    if addr["type"] == "inet":
        host = f"[{addr['host']}]" if addr.get("ipv6") else addr["host"]
        return f"tcp:{host}:{addr['port']}"
    if addr["type"] == "unix":
        return f"unix:{addr['path']}"
    return f"fd:{addr['str']}"
