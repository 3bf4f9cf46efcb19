"""The toynic frame relay as a process: frames from a client of one `listen=` port reach
the client of the other byte-exact and in order, for every size 1..65535 and however the
input is chunked (QEMU: net/socket.c stream framing through net/hub.c)."""

from __future__ import annotations

import itertools
import random
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.conftest import Relay
from tests.netsupport import pump, records, relay_drained

Pair = tuple[socket.socket, socket.socket]


def frames_of(sizes: list[int], seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(n) for n in sizes]


@pytest.fixture(scope="module")
def pair(shared_relay: Relay) -> Iterator[Pair]:
    a = shared_relay.client(0)
    b = shared_relay.client(1)
    yield a, b


def relay_one_way(src: socket.socket, dst: socket.socket, frames: list[bytes]) -> list[bytes]:
    got = pump({src: records(frames)}, {dst: len(frames)}, timeout=60.0)[dst]
    return got


@pytest.mark.parametrize("direction", ["a->b", "b->a"])
def test_every_small_size_and_the_boundaries(pair: Pair, direction: str) -> None:
    src, dst = pair if direction == "a->b" else pair[::-1]
    sizes = [*range(1, 1601), 4095, 4096, 4097, 9000, 16384, 32767, 32768, 65534, 65535]
    frames = frames_of(sizes, seed=len(direction))
    got = relay_one_way(src, dst, frames)
    assert len(got) == len(frames)
    assert [len(g) for g in got] == sizes
    assert got == frames


def test_sizes_across_the_whole_range(pair: Pair) -> None:
    a, b = pair
    sizes = [*range(1, 65536, 251), 65535]
    frames = frames_of(sizes, seed=7)
    assert relay_one_way(a, b, frames) == frames


def test_both_directions_at_once(pair: Pair) -> None:
    a, b = pair
    to_b = frames_of([60, 1514, 65535, 1, 590] * 40, seed=1)
    to_a = frames_of([1514, 2, 64, 40000] * 50, seed=2)
    got = pump({a: records(to_b), b: records(to_a)}, {a: len(to_a), b: len(to_b)}, timeout=60.0)
    assert got[b] == to_b
    assert got[a] == to_a


@st.composite
def chunked_records(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """Frames (sizes 1..65535, biased to the small and the edges) and the wire bytes
    carrying them, cut at arbitrary points."""
    size = st.one_of(st.integers(1, 80), st.integers(1, 65535),
                     st.sampled_from([1, 2, 3, 4, 5, 1514, 65534, 65535]))
    sizes = draw(st.lists(size, min_size=1, max_size=6))
    frames = frames_of(sizes, seed=draw(st.integers(0, 2**16)))
    wire = records(frames)
    cuts = sorted(set(draw(st.lists(st.integers(1, len(wire) - 1), max_size=12))))
    bounds = [0, *cuts, len(wire)]
    return frames, [wire[i:j] for i, j in itertools.pairwise(bounds)]


@given(case=chunked_records(), forward=st.booleans())
def test_any_chunking_is_reassembled(shared_relay: Relay, pair: Pair,
                                     case: tuple[list[bytes], list[bytes]],
                                     forward: bool) -> None:
    frames, chunks = case
    src, dst = pair if forward else pair[::-1]
    side = 0 if forward else 1
    # Each chunk goes only once the relay has read all before it, so the relay's recv()
    # sees the chunk boundaries: a length prefix split 1+3, a frame split mid-body, ...
    barrier = relay_drained(shared_relay.proc.pid, shared_relay.ports[side], src)
    got = pump({src: chunks}, {dst: len(frames)}, barriers={src: barrier}, timeout=60.0)[dst]
    assert got == frames
