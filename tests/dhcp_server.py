"""A small DHCP server for tests, written from RFC 2131 (protocol) and RFC 2132 (options);
QEMU's counterpart is slirp's bootp.c. It is independent of the guest's DHCP client on
purpose: the tests use it as the other side of the conversation.

It works on whole Ethernet frames: `DhcpServer.handle(frame)` takes what a client sent
and returns the frames to send back (OFFER for DISCOVER, ACK or NAK for REQUEST). The
BOOTP message is encoded and decoded here by hand (RFC 2131 section 2, figure 1); only
the Ethernet/IPv4/UDP wrapping uses scapy.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

SERVER_PORT = 67
CLIENT_PORT = 68
BOOTREQUEST = 1
BOOTREPLY = 2
HTYPE_ETHERNET = 1
MAGIC_COOKIE = bytes([99, 130, 83, 99])  # RFC 2131 section 3
BROADCAST_FLAG = 0x8000

# RFC 2132 option codes
OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_END = 255

# RFC 2132 section 9.6 (option 53 values)
DHCPDISCOVER = 1
DHCPOFFER = 2
DHCPREQUEST = 3
DHCPDECLINE = 4
DHCPACK = 5
DHCPNAK = 6
DHCPRELEASE = 7
MESSAGE_NAMES = {DHCPDISCOVER: "DISCOVER", DHCPOFFER: "OFFER", DHCPREQUEST: "REQUEST",
                 DHCPDECLINE: "DECLINE", DHCPACK: "ACK", DHCPNAK: "NAK",
                 DHCPRELEASE: "RELEASE", 8: "INFORM"}

# op htype hlen hops xid secs flags ciaddr yiaddr siaddr giaddr chaddr sname file
FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")


class DhcpFormatError(ValueError):
    """The bytes are not a well-formed BOOTP/DHCP message."""


@dataclass
class DhcpMessage:
    """One BOOTP message with DHCP options (addresses as dotted strings)."""

    op: int
    xid: int
    chaddr: bytes
    htype: int = HTYPE_ETHERNET
    hlen: int = 6
    hops: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: str = "0.0.0.0"
    yiaddr: str = "0.0.0.0"
    siaddr: str = "0.0.0.0"
    giaddr: str = "0.0.0.0"
    options: dict[int, bytes] = field(default_factory=dict)

    @property
    def message_type(self) -> int | None:
        value = self.options.get(OPT_MESSAGE_TYPE)
        return value[0] if value and len(value) == 1 else None

    @property
    def client_mac(self) -> bytes:
        return self.chaddr[:self.hlen]

    def ip_option(self, code: int) -> str | None:
        value = self.options.get(code)
        if value is None or len(value) < 4:
            return None
        return str(ipaddress.IPv4Address(value[:4]))

    @classmethod
    def decode(cls, data: bytes) -> DhcpMessage:
        if len(data) < FIXED.size + len(MAGIC_COOKIE):
            raise DhcpFormatError(f"{len(data)} bytes: shorter than a BOOTP message")
        (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr,
         _sname, _file) = FIXED.unpack_from(data)
        if data[FIXED.size:FIXED.size + 4] != MAGIC_COOKIE:
            raise DhcpFormatError("no DHCP magic cookie")
        if hlen > len(chaddr):
            raise DhcpFormatError(f"hlen {hlen} longer than chaddr")
        return cls(op=op, htype=htype, hlen=hlen, hops=hops, xid=xid, secs=secs, flags=flags,
                   ciaddr=_ip(ciaddr), yiaddr=_ip(yiaddr), siaddr=_ip(siaddr),
                   giaddr=_ip(giaddr), chaddr=chaddr,
                   options=decode_options(data[FIXED.size + 4:]))

    def encode(self) -> bytes:
        fixed = FIXED.pack(self.op, self.htype, self.hlen, self.hops, self.xid, self.secs,
                           self.flags, _packed(self.ciaddr), _packed(self.yiaddr),
                           _packed(self.siaddr), _packed(self.giaddr),
                           self.chaddr.ljust(16, b"\0"), b"", b"")
        return fixed + MAGIC_COOKIE + encode_options(self.options)


def _ip(packed: bytes) -> str:
    return str(ipaddress.IPv4Address(packed))


def _packed(ip: str) -> bytes:
    return ipaddress.IPv4Address(ip).packed


def decode_options(data: bytes) -> dict[int, bytes]:
    """RFC 2132 section 2: code, length, value; PAD has no length; END stops.
    A repeated option is concatenated (RFC 3396 section 3)."""
    options: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        code = data[pos]
        if code == OPT_END:
            return options
        if code == OPT_PAD:
            pos += 1
            continue
        if pos + 1 >= len(data):
            raise DhcpFormatError(f"option {code} has no length byte")
        length = data[pos + 1]
        value = data[pos + 2:pos + 2 + length]
        if len(value) != length:
            raise DhcpFormatError(f"option {code} runs past the message")
        options[code] = options.get(code, b"") + value
        pos += 2 + length
    raise DhcpFormatError("options not terminated by END")


def encode_options(options: dict[int, bytes]) -> bytes:
    out = bytearray()
    for code, value in options.items():
        for start in range(0, max(len(value), 1), 255):
            chunk = value[start:start + 255]
            out += bytes([code, len(chunk)]) + chunk
    out.append(OPT_END)
    # RFC 1542 section 2.1: a BOOTP message is at least 300 bytes, i.e. the 240 bytes of
    # fixed fields and cookie plus at least 60 of options
    return bytes(out.ljust(60, bytes([OPT_PAD])))


@dataclass
class Lease:
    address: str
    mac: bytes
    bound: bool = False


class DhcpServer:
    """Hands out addresses from `pool_start` upwards, one per client hardware address."""

    def __init__(self, *, server_ip: str, server_mac: str, pool_start: str, mask: str,
                 router: str, dns: str, lease_seconds: int) -> None:
        self.server_ip = server_ip
        self.server_mac = server_mac
        self.mask = mask
        self.router = router
        self.dns = dns
        self.lease_seconds = lease_seconds
        self._next = ipaddress.IPv4Address(pool_start)
        self.leases: dict[bytes, Lease] = {}
        self.received: list[DhcpMessage] = []
        self.sent: list[DhcpMessage] = []

    def handle(self, frame: bytes) -> list[bytes]:
        """Frames answering one frame from the segment (none if it is not for us)."""
        pkt = Ether(frame)
        if UDP not in pkt or pkt[UDP].dport != SERVER_PORT:
            return []
        try:
            msg = DhcpMessage.decode(bytes(pkt[UDP].payload))
        except DhcpFormatError:
            return []
        if msg.op != BOOTREQUEST or msg.htype != HTYPE_ETHERNET or msg.hlen != 6:
            return []
        self.received.append(msg)
        kind = msg.message_type
        if kind == DHCPDISCOVER:
            reply = self._offer(msg)
        elif kind == DHCPREQUEST:
            reply = self._request(msg)
        elif kind in (DHCPRELEASE, DHCPDECLINE):
            self.leases.pop(msg.client_mac, None)
            reply = None
        else:
            reply = None
        if reply is None:
            return []
        self.sent.append(reply)
        return [self._frame(msg, reply)]

    def _lease_for(self, client: bytes) -> Lease:
        lease = self.leases.get(client)
        if lease is None:
            lease = Lease(str(self._next), client)
            self._next += 1
            self.leases[client] = lease
        return lease

    def _reply(self, request: DhcpMessage, kind: int, yiaddr: str) -> DhcpMessage:
        options = {OPT_MESSAGE_TYPE: bytes([kind]), OPT_SERVER_ID: _packed(self.server_ip)}
        if kind != DHCPNAK:
            options |= {
                OPT_LEASE_TIME: struct.pack("!I", self.lease_seconds),
                OPT_SUBNET_MASK: _packed(self.mask),
                OPT_ROUTER: _packed(self.router),
                OPT_DNS: _packed(self.dns),
            }
        return DhcpMessage(op=BOOTREPLY, xid=request.xid, chaddr=request.chaddr,
                           flags=request.flags, giaddr=request.giaddr, yiaddr=yiaddr,
                           ciaddr=request.ciaddr if kind == DHCPACK else "0.0.0.0",
                           options=options)

    def _offer(self, msg: DhcpMessage) -> DhcpMessage:
        return self._reply(msg, DHCPOFFER, self._lease_for(msg.client_mac).address)

    def _request(self, msg: DhcpMessage) -> DhcpMessage | None:
        server_id = msg.ip_option(OPT_SERVER_ID)
        if server_id is not None and server_id != self.server_ip:
            # the client chose another server's offer (RFC 2131 section 4.3.2)
            self.leases.pop(msg.client_mac, None)
            return None
        wanted = msg.ip_option(OPT_REQUESTED_IP) or msg.ciaddr
        lease = self.leases.get(msg.client_mac)
        if lease is None or wanted != lease.address:
            return self._reply(msg, DHCPNAK, "0.0.0.0")
        lease.bound = True
        return self._reply(msg, DHCPACK, lease.address)

    def _frame(self, request: DhcpMessage, reply: DhcpMessage) -> bytes:
        """Where a reply goes (RFC 2131 section 4.1, without relay agents)."""
        client_mac = ":".join(f"{b:02x}" for b in request.client_mac)
        if reply.message_type == DHCPNAK or request.flags & BROADCAST_FLAG:
            dst_ip, dst_mac = "255.255.255.255", "ff:ff:ff:ff:ff:ff"
        elif request.ciaddr != "0.0.0.0":
            dst_ip, dst_mac = request.ciaddr, client_mac
        else:
            dst_ip, dst_mac = reply.yiaddr, client_mac
        return bytes(Ether(src=self.server_mac, dst=dst_mac)
                     / IP(src=self.server_ip, dst=dst_ip)
                     / UDP(sport=SERVER_PORT, dport=CLIENT_PORT)
                     / reply.encode())
