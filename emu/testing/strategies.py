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
    arp_request,
    ethernet,
    icmp_echo,
    ipv4,
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
def ethernet_frames(own: bytes | None = None, *, min_size: int = 0,
                    max_size: int = 2000) -> st.SearchStrategy[bytes]:
    """Raw frames of any length in [min_size, max_size] whose first 6 bytes (when the
    frame is that long) are a destination from `mac_addresses(own)`."""
    return st.builds(lambda dst, raw: (dst + raw[6:])[:len(raw)], mac_addresses(own),
                     st.binary(min_size=min_size, max_size=max_size))


@_needs_hypothesis
def valid_frames(dst: bytes, src: bytes, src_ip: bytes = bytes((10, 0, 0, 2)),
                 dst_ip: bytes = bytes((10, 0, 0, 1))) -> st.SearchStrategy[bytes]:
    """Well-formed ARP requests, ICMP echo requests and UDP datagrams from src to dst."""
    payloads = st.binary(max_size=1400)
    ports = st.integers(1, 0xFFFF)
    ping = st.builds(lambda i, s, d: ethernet(dst, src, ETH_P_IP, ipv4(
        src_ip, dst_ip, 1, icmp_echo(i, s, d))), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
        payloads)
    datagram = st.builds(lambda sp, dp, d: ethernet(dst, src, ETH_P_IP, ipv4(
        src_ip, dst_ip, 17, udp(src_ip, dst_ip, sp, dp, d))), ports, ports, payloads)
    return st.one_of(st.just(arp_request(src, src_ip, dst_ip)), ping, datagram)


@_needs_hypothesis
def malformed_frames(dst: bytes, src: bytes) -> st.SearchStrategy[bytes]:
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
