"""Property tests of stream framing: any frames under any chunking round-trip (runs of
equal-length records too, which the reassembler walks without a step per record); any
oversized prefix closes the record stream and resets the reassembler."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from emu.testing import record
from netdev.framing import NET_BUFSIZE, Reassembler

frame_sizes = st.one_of(st.integers(0, 80), st.integers(0, NET_BUFSIZE), st.just(NET_BUFSIZE))


@st.composite
def frames_and_cuts(draw: st.DrawFn) -> tuple[list[bytes], list[int]]:
    sizes = draw(st.lists(frame_sizes, max_size=8))
    frames = [bytes([i & 0xFF]) * size for i, size in enumerate(sizes)]
    total = sum(4 + len(f) for f in frames)
    cuts = draw(st.lists(st.integers(0, total), max_size=12))
    return frames, sorted(set(cuts))


def feed_in_pieces(reassembler: Reassembler, data: bytes, cuts: list[int]):
    feeds = []
    start = 0
    for cut in [*cuts, len(data)]:
        if cut > start:
            feeds.append(reassembler.feed(data[start:cut]))
            start = cut
    return feeds


@given(frames_and_cuts())
def test_any_frames_any_chunking_round_trip(case: tuple[list[bytes], list[int]]) -> None:
    frames, cuts = case
    stream = b"".join(record(f) for f in frames)
    reassembler = Reassembler()
    feeds = feed_in_pieces(reassembler, stream, cuts)
    got = [frame for feed in feeds for batch in feed.batches for frame in batch.frames()]
    assert got == [f for f in frames if f]
    assert sum(feed.empty_records for feed in feeds) == sum(1 for f in frames if not f)
    assert not any(feed.oversized for feed in feeds)
    assert reassembler.pending == 0


# Lengths that share three of their four prefix bytes with 60 (a run must end where any
# one byte of the prefix differs; the last two are oversized), and an empty record.
RUN_SIZES = (0, 1, 60, 61, 60 + 256, 60 + 65536, 1514, 60 + (1 << 24), NET_BUFSIZE + 1)


@st.composite
def runs_and_cuts(draw: st.DrawFn) -> tuple[list[int], bytes, list[int]]:
    runs = draw(st.lists(st.tuples(st.sampled_from(RUN_SIZES), st.integers(1, 40)),
                         min_size=1, max_size=6))
    lengths = [size for size, repeat in runs for _ in range(repeat)]
    oversized = [i for i, size in enumerate(lengths) if size > NET_BUFSIZE]
    if oversized:
        # The connection ends there: nothing after it is read.
        lengths = lengths[:oversized[0] + 1]
    # Each record's body differs from its neighbours'; an oversized one has 70 bytes.
    bodies = [bytes([i & 0xFF]) * (70 if size > NET_BUFSIZE else size)
              for i, size in enumerate(lengths)]
    stream = b"".join(struct.pack(">I", size) + body for size, body in zip(lengths, bodies,
                                                                            strict=True))
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=6))
    return lengths, stream, sorted(set(cuts))


@given(runs_and_cuts())
def test_runs_of_equal_lengths_any_chunking_are_read_record_by_record(
        case: tuple[list[int], bytes, list[int]]) -> None:
    """Every record of a run is delivered whole and counted, and a run ends at the first
    record whose prefix differs in any byte (against a plain record-by-record parse)."""
    lengths, stream, cuts = case
    oversized = lengths[-1] > NET_BUFSIZE
    records = lengths[:-1] if oversized else lengths
    expected = []
    offset = 0
    for size in records:
        if size:
            expected.append(stream[offset + 4:offset + 4 + size])
        offset += 4 + size
    reassembler = Reassembler()
    feeds = feed_in_pieces(reassembler, stream, cuts)
    if oversized:
        feeds = feeds[:[feed.oversized for feed in feeds].index(True) + 1]
    batches = [batch for feed in feeds for batch in feed.batches]
    assert [frame for batch in batches for frame in batch.frames()] == expected
    assert all(batch.count == len(list(batch.frames())) for batch in batches)
    assert sum(feed.empty_records for feed in feeds) == records.count(0)
    assert feeds[-1].oversized == oversized


@given(
    before=st.lists(st.binary(min_size=1, max_size=40), max_size=4),
    length=st.integers(NET_BUFSIZE + 1, 0xFFFFFFFF),
    junk=st.binary(max_size=64),
    cut=st.integers(0, 200),
)
def test_any_oversized_prefix_closes_and_resets(
    before: list[bytes], length: int, junk: bytes, cut: int
) -> None:
    stream = b"".join(record(f) for f in before) + struct.pack(">I", length) + junk
    reassembler = Reassembler()
    feeds = feed_in_pieces(reassembler, stream, [min(cut, len(stream))])
    oversized_at = [i for i, feed in enumerate(feeds) if feed.oversized]
    assert oversized_at, "the oversized prefix was not reported"
    got = [
        frame
        for feed in feeds[: oversized_at[0] + 1]
        for batch in feed.batches
        for frame in batch.frames()
    ]
    assert got == before
    fresh = Reassembler()
    if len(feeds) == oversized_at[0] + 1:
        assert reassembler.pending == fresh.pending == 0
        after = reassembler.feed(record(b"next"))
        assert [f for b in after.batches for f in b.frames()] == [b"next"]


@given(st.binary(max_size=12), st.one_of(
    st.binary(max_size=100),
    st.builds(lambda size, junk: struct.pack(">I", size) + junk,
              st.one_of(st.integers(0, 100), st.integers(NET_BUFSIZE - 2, NET_BUFSIZE + 2)),
              st.binary(max_size=100))))
def test_whole_record_says_yes_only_when_feed_gives_that_one_record(
        before: bytes, chunk: bytes) -> None:
    """The lone-frame shortcut of the stream socket (`whole_record`) against the general
    parse: after any earlier bytes, on any chunk (hostile lengths included)."""
    reassembler = Reassembler()
    reassembler.feed(before)
    check = Reassembler()
    check.feed(before)
    length = struct.unpack_from(">I", chunk)[0] if len(chunk) >= 4 else -1
    lone = check.pending == 0 and 0 < length <= NET_BUFSIZE and length + 4 == len(chunk)
    assert reassembler.whole_record(memoryview(chunk), len(chunk)) == lone
    if lone:
        feed = check.feed(chunk)
        assert [(bytes(b.data), b.count) for b in feed.batches] == [(chunk, 1)]
        assert not feed.oversized and not feed.empty_records and check.pending == 0
