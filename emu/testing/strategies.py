"""Hypothesis strategies for protocol tests: frames (valid and malformed), NE2000 register
programs and socket byte streams (QEMU has no counterpart: its qtests use fixed inputs).

This is the one module of the kit that needs Hypothesis. Without it the module still
imports, and calling a strategy raises ModuleNotFoundError saying how to install it.
"""

from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Callable
from typing import NoReturn, TypeVar

from emu.testing.frames import (
    BROADCAST,
    ETH_P_ARP,
    ETH_P_IP,
    IPv4Like,
    MacLike,
    arp_request,
    ethernet,
    icmp_echo,
    ip_bytes,
    ipv4,
    mac_bytes,
    udp,
)
from emu.testing.programs import RegWrite
from emu.testing.streams import StreamCase, record, records
from netdev.framing import NET_BUFSIZE

try:
    from hypothesis import strategies as st
except ModuleNotFoundError:
    st = None

Strategy = TypeVar("Strategy", bound=Callable[..., object])

# Where receivers go wrong, in bytes of frame (no CRC). The 8390 stores a frame in 256-byte
# ring pages behind a 4-byte header and keeps 4 bytes for the CRC, so a frame of n bytes
# takes ceil((n + 8) / 256) pages: 248 is the largest in one page, 249 the smallest in two,
# and so on up the ring. 14 is the Ethernet header, 60 the minimum frame (shorter ones are
# padded), 1514 the longest untagged frame, 1518 the longest the NE2000 takes.
RING_PAGE = 256
RX_OVERHEAD = 8
PAGE_EDGES = tuple(n for k in range(1, 7) for n in (RING_PAGE * k - RX_OVERHEAD - 1,
                                                    RING_PAGE * k - RX_OVERHEAD,
                                                    RING_PAGE * k - RX_OVERHEAD + 1))
SIZE_EDGES = (0, 1, 13, 14, 15, 59, 60, 61, *PAGE_EDGES, 1513, 1514, 1515, 1517, 1518, 1519)
# IPv4 + ICMP echo / UDP headers behind the Ethernet header: payload = frame size - 42.
IP_OVERHEAD = 14 + 20 + 8


def _needs_hypothesis(strategy: Strategy) -> Strategy:
    """`strategy` itself when Hypothesis is installed; else a stand-in of the same name
    that raises ModuleNotFoundError (name "hypothesis") saying how to install it."""
    if st is not None:
        return strategy

    @functools.wraps(strategy)
    def unavailable(*_args: object, **_kwargs: object) -> NoReturn:
        raise ModuleNotFoundError(
            f"emu.testing.{strategy.__name__} needs Hypothesis, which is not installed: "
            "pip install 'toynic[test]' (or pip install hypothesis)", name="hypothesis")

    return unavailable  # type: ignore[return-value]


@_needs_hypothesis
def mac_addresses(own: bytes | None = None) -> st.SearchStrategy[bytes]:
    """Any destination a NIC may see: broadcast, multicast, `own`, or any unicast."""
    choices = [st.just(BROADCAST), st.binary(min_size=6, max_size=6),
               st.binary(min_size=5, max_size=5).map(lambda b: bytes([b[0] | 1]) + b[1:]),
               st.binary(min_size=5, max_size=5).map(lambda b: bytes([b[0] & 0xFE]) + b[1:])]
    if own is not None:
        choices.insert(0, st.just(own))
    return st.one_of(*choices)


@_needs_hypothesis
def frame_sizes(min_size: int = 0, max_size: int = 1518) -> st.SearchStrategy[int]:
    """Frame lengths in [min_size, max_size], most of them drawn from the edges where
    receivers go wrong (`SIZE_EDGES`: empty, the 14-byte header, the 60-byte minimum,
    each ring-page boundary 247/248/249, 503/504/505, ..., 1514 and 1518), the rest
    anywhere in the range. Shrinks towards `min_size` and the smallest edges."""
    if not 0 <= min_size <= max_size:
        raise ValueError(f"frame_sizes: need 0 <= min_size <= max_size, got {min_size}, "
                         f"{max_size}")
    edges = [n for n in SIZE_EDGES if min_size <= n <= max_size]
    anywhere = st.integers(min_size, max_size)
    if not edges:
        return anywhere
    # Three edge draws to one free draw (one_of would weigh them 1:1): a bug at one edge
    # should show within a hundred examples, where uniform sizes hit 249 once in 1500.
    edge = st.sampled_from(edges)
    return st.integers(0, 3).flatmap(lambda k: edge if k else anywhere)


@_needs_hypothesis
def ethernet_frames(own: bytes | None = None, *, min_size: int = 0,
                    max_size: int = 2000) -> st.SearchStrategy[bytes]:
    """Raw frames whose length is drawn by `frame_sizes(min_size, max_size)` (so the ring's
    page boundaries and the 60/1514/1518 edges come up often) and whose first 6 bytes
    (when the frame is that long) are a destination from `mac_addresses(own)`."""
    return st.builds(lambda dst, raw: (dst + raw[6:])[:len(raw)], mac_addresses(own),
                     frame_sizes(min_size, max_size).flatmap(
                         lambda n: st.binary(min_size=n, max_size=n)))


@_needs_hypothesis
def valid_frames(dst: MacLike, src: MacLike, src_ip: IPv4Like = "10.0.0.2",
                 dst_ip: IPv4Like = "10.0.0.1") -> st.SearchStrategy[bytes]:
    """Well-formed frames from `src` to `dst`: ARP requests for `dst_ip` (sent to `dst`
    like every other frame: pass dst=BROADCAST for the usual broadcast who-has), ICMP
    echo requests and UDP datagrams from `src_ip` to `dst_ip`, their sizes biased to the
    ring edges of `frame_sizes` (60 to 1514 bytes). Addresses as in emu.testing.frames:
    "10.0.0.1", an ipaddress.IPv4Address or 4 bytes; "52:54:00:12:34:56" or 6 bytes. A
    wrong address is a ValueError now, naming the argument."""
    dst, src = mac_bytes(dst, "valid_frames dst"), mac_bytes(src, "valid_frames src")
    src_ip = ip_bytes(src_ip, "valid_frames src_ip")
    dst_ip = ip_bytes(dst_ip, "valid_frames dst_ip")
    payloads = frame_sizes(IP_OVERHEAD, 1514).flatmap(
        lambda n: st.binary(min_size=n - IP_OVERHEAD, max_size=n - IP_OVERHEAD))
    ports = st.integers(1, 0xFFFF)
    ping = st.builds(lambda i, s, d: ethernet(dst, src, ETH_P_IP, ipv4(
        src_ip, dst_ip, 1, icmp_echo(i, s, d))), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
        payloads)
    datagram = st.builds(lambda sp, dp, d: ethernet(dst, src, ETH_P_IP, ipv4(
        src_ip, dst_ip, 17, udp(src_ip, dst_ip, sp, dp, d))), ports, ports, payloads)
    return st.one_of(st.just(arp_request(src, src_ip, dst_ip, dst=dst)), ping, datagram)


@_needs_hypothesis
def malformed_frames(dst: MacLike, src: MacLike) -> st.SearchStrategy[bytes]:
    """Frames a stack must ignore: valid ones truncated, with a flipped byte in the IPv4
    header or ICMP/UDP part, or with an unknown ethertype."""
    base = valid_frames(dst, src)

    def flip(frame: bytes, where: int, mask: int) -> bytes:
        at = 14 + where % max(1, len(frame) - 14)
        return frame[:at] + bytes([frame[at] ^ mask]) + frame[at + 1:]

    return st.one_of(
        st.builds(lambda f, n: f[:n], base, st.integers(0, 41)),
        st.builds(flip, base, st.integers(0, 1500), st.integers(1, 255)),
        st.builds(lambda f, t: f[:12] + struct.pack("!H", t) + f[14:], base,
                  st.integers(0, 0xFFFF).filter(lambda t: t not in (ETH_P_IP, ETH_P_ARP))),
    )


@_needs_hypothesis
def ne2000_programs(max_writes: int = 40) -> st.SearchStrategy[list[RegWrite]]:
    """Sequences of register writes: any page, any offset of the window (registers, data
    port 0x10, reset port 0x1F), widths 1/2/4, any value of that width."""
    write = st.builds(
        lambda page, offset, width, value: RegWrite(page, offset, width,
                                                    value & ((1 << 8 * width) - 1)),
        st.integers(0, 3), st.integers(0, 0x1F), st.sampled_from((1, 2, 4)),
        st.integers(0, 0xFFFFFFFF))
    return st.lists(write, max_size=max_writes)


def _chunked(data: bytes, cuts: list[int]) -> tuple[bytes, ...]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return tuple(data[a:b] for a, b in itertools.pairwise(points) if b > a)


@_needs_hypothesis
def socket_streams(frames: st.SearchStrategy[bytes] | None = None, *,
                   max_frames: int = 8) -> st.SearchStrategy[StreamCase]:
    """Valid streams: BE32 length-prefixed records of `frames`, cut at arbitrary points."""
    frames = frames if frames is not None else st.binary(min_size=1, max_size=1514)
    return st.builds(
        lambda fs, cuts: StreamCase(_chunked(records(fs), cuts), tuple(fs)),
        st.lists(frames, max_size=max_frames), st.lists(st.integers(0, 1 << 20), max_size=12))


@_needs_hypothesis
def corrupt_streams(max_frames: int = 4) -> st.SearchStrategy[StreamCase]:
    """Streams a reader must survive: good records (`frames`), then damage. With an
    oversize length prefix (> NET_BUFSIZE) or a truncated last record (the sender stops
    mid-record) exactly `frames` arrive; after random garbage, `frames` is a prefix of
    what arrives (garbage may happen to parse as records)."""
    good = st.lists(st.binary(min_size=1, max_size=256), max_size=max_frames)
    cuts = st.lists(st.integers(0, 1 << 16), max_size=6)

    def oversize(fs: list[bytes], size: int, c: list[int]) -> StreamCase:
        data = records(fs) + struct.pack(">I", size) + bytes(64)
        return StreamCase(_chunked(data, c), tuple(fs), "oversize")

    def truncated(fs: list[bytes], last: bytes, keep: int, c: list[int]) -> StreamCase:
        tail = record(last)[:keep % (len(last) + 4)]
        return StreamCase(_chunked(records(fs) + tail, c), tuple(fs), "truncated")

    def garbage(fs: list[bytes], junk: bytes, c: list[int]) -> StreamCase:
        return StreamCase(_chunked(records(fs) + junk, c), tuple(fs), "garbage")

    return st.one_of(
        st.builds(oversize, good, st.integers(NET_BUFSIZE + 1, 0xFFFFFFFF), cuts),
        st.builds(truncated, good, st.binary(min_size=1, max_size=256), st.integers(0), cuts),
        st.builds(garbage, good, st.binary(min_size=1, max_size=512), cuts),
    )
