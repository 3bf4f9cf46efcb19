"""The kit's frame strategies find edges (docs/testing-kit.md, "The strategies"): sizes at
the NE2000 ring's page boundaries, addresses written as a test writes them, ARP sent to
`dst`."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from devices.dp8390 import pages_for
from emu.testing import BROADCAST, arp_request, ethernet_frames, valid_frames
from emu.testing.frames import ETH_P_ARP, ip_bytes, mac_bytes
from emu.testing.strategies import PAGE_EDGES, SIZE_EDGES, frame_sizes

DST = bytes.fromhex("525400123456")
SRC = bytes.fromhex("020000000001")
# A fixed search: the same examples every run, nothing replayed from a database.
SEARCH = settings(max_examples=100, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])


def test_the_page_edges_are_where_the_chip_takes_one_page_more() -> None:
    """Each boundary triple is (last size of k pages - 1, last size of k pages, first of
    k + 1), as the chip counts: header, frame and CRC slot."""
    for low, last, first in zip(PAGE_EDGES[::3], PAGE_EDGES[1::3], PAGE_EDGES[2::3],
                                strict=True):
        assert pages_for(low) == pages_for(last) == pages_for(first) - 1
        assert pages_for(last) == (last + 8) // 256
    assert {0, 14, 59, 60, 61, 1514, 1518, 1519} <= set(SIZE_EDGES)


def crc_forgetting_pages(size: int) -> int:
    """A receive-ring model with a classic mistake: header and frame, no CRC slot."""
    return (max(size, 60) + 4 + 255) // 256


def test_a_ring_model_without_the_crc_slot_is_caught_and_shrinks_to_249() -> None:
    # Uniform sizes hit 249..252 (and 505..508, ...) about 1 time in 60; the edges do it
    # within the first examples.
    frame = find(ethernet_frames(min_size=0, max_size=1518),
                 lambda f: crc_forgetting_pages(len(f)) != pages_for(max(len(f), 60)),
                 settings=SEARCH)
    assert len(frame) == 249


@given(st.data())
@settings(max_examples=50, deadline=None)
def test_frame_sizes_stay_in_range(data: st.DataObject) -> None:
    low = data.draw(st.integers(0, 1600))
    high = data.draw(st.integers(low, 2000))
    assert low <= data.draw(frame_sizes(low, high)) <= high


def test_frame_sizes_refuses_an_empty_range() -> None:
    with pytest.raises(ValueError, match="min_size <= max_size"):
        frame_sizes(100, 99)


def test_valid_frames_cross_page_boundaries() -> None:
    """Within a hundred examples some frame is the smallest to take one page more."""
    first_of_next_page = set(PAGE_EDGES[2::3])
    frame = find(valid_frames(DST, SRC), lambda f: len(f) in first_of_next_page,
                 settings=SEARCH)
    assert len(frame) in first_of_next_page


@pytest.mark.parametrize("dst_ip", ["10.0.0.1", ipaddress.IPv4Address("10.0.0.1"),
                                    bytes((10, 0, 0, 1))])
@pytest.mark.parametrize("dst", ["52:54:00:12:34:56", DST])
def test_addresses_may_be_strings_ipaddress_objects_or_bytes(
        dst_ip: object, dst: object) -> None:
    arp = find(valid_frames(dst, SRC, "10.0.0.2", dst_ip),  # type: ignore[arg-type]
               lambda f: f[12:14] == struct.pack("!H", ETH_P_ARP), settings=SEARCH)
    assert arp == arp_request(SRC, "10.0.0.2", bytes((10, 0, 0, 1)), dst=DST)


@pytest.mark.parametrize(("argument", "value"), [
    ("dst_ip", "10.0.0"), ("dst_ip", b"\x0a\x00\x00"), ("src_ip", 167772161),
    ("src_ip", "::1"), ("dst", "52:54:00:12:34"), ("src", b"\x02\x00"),
])
def test_a_wrong_address_is_a_value_error_naming_the_argument(argument: str,
                                                              value: object) -> None:
    kwargs: dict[str, object] = {"dst": DST, "src": SRC, argument: value}
    with pytest.raises(ValueError, match=f"valid_frames {argument} must be"):
        valid_frames(**kwargs)  # type: ignore[arg-type]


def test_arp_requests_go_to_dst() -> None:
    """valid_frames sends every frame to `dst`, ARP included (a unicast who-has);
    dst=BROADCAST gives the usual broadcast request."""
    is_arp = lambda f: f[12:14] == struct.pack("!H", ETH_P_ARP)  # noqa: E731
    assert find(valid_frames(DST, SRC), is_arp, settings=SEARCH)[:6] == DST
    assert find(valid_frames(BROADCAST, SRC), is_arp, settings=SEARCH)[:6] == BROADCAST


def test_builders_take_the_same_address_spellings() -> None:
    assert ip_bytes("10.1.2.3") == ip_bytes(ipaddress.IPv4Address("10.1.2.3")) == b"\n\1\2\3"
    assert mac_bytes("02:00:00:00:00:01") == SRC
    assert arp_request("02:00:00:00:00:01", "10.0.0.2", "10.0.0.1") == arp_request(
        SRC, b"\n\0\0\2", b"\n\0\0\1")
    with pytest.raises(ValueError, match="arp_request target_ip must be an IPv4 address"):
        arp_request(SRC, "10.0.0.2", "ten")
