"""Stream framing: records, reassembly across chunks, empty records, the 69632 limit."""

from __future__ import annotations

import struct

from emu.testing import record
from netdev.framing import NET_BUFSIZE, Reassembler, RecordBatch


def frames_of(feed_batches: list[RecordBatch]) -> list[bytes]:
    return [frame for batch in feed_batches for frame in batch.frames()]


def test_s1_single_record() -> None:
    feed = Reassembler().feed(bytes.fromhex("00000005") + b"TEST\x00")
    assert frames_of(feed.batches) == [b"TEST\x00"]


def test_s2_byte_by_byte_gives_one_frame() -> None:
    reassembler = Reassembler()
    out: list[bytes] = []
    for byte in bytes.fromhex("00000005") + b"TEST\x00":
        out += frames_of(reassembler.feed(bytes([byte])).batches)
    assert out == [b"TEST\x00"]
    assert reassembler.pending == 0


def test_s3_two_records_in_one_chunk_in_order() -> None:
    feed = Reassembler().feed(record(b"one") + record(b"two"))
    assert frames_of(feed.batches) == [b"one", b"two"]
    assert sum(batch.count for batch in feed.batches) == 2


def test_s4_empty_record_is_skipped_and_counted() -> None:
    feed = Reassembler().feed(record(b"a") + record(b"") + record(b"b"))
    assert frames_of(feed.batches) == [b"a", b"b"]
    assert feed.empty_records == 1


def test_empty_record_at_chunk_end_is_counted_at_once() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(record(b"")).empty_records == 1
    assert reassembler.pending == 0


def test_largest_frame_accepted() -> None:
    frame = bytes(range(256)) * (NET_BUFSIZE // 256)
    assert len(frame) == NET_BUFSIZE
    feed = Reassembler().feed(record(frame))
    assert not feed.oversized
    assert frames_of(feed.batches) == [frame]


def test_s5_oversized_prefix_keeps_earlier_frames_then_resets() -> None:
    reassembler = Reassembler()
    feed = reassembler.feed(record(b"ok") + struct.pack(">I", NET_BUFSIZE + 1) + b"x" * 100)
    assert feed.oversized
    assert frames_of(feed.batches) == [b"ok"]
    assert reassembler.pending == 0
    assert frames_of(reassembler.feed(record(b"again")).batches) == [b"again"]


def test_all_ones_prefix_split_across_chunks_is_oversized() -> None:
    reassembler = Reassembler()
    assert not reassembler.feed(b"\xff\xff").oversized
    assert reassembler.feed(b"\xff\xff").oversized
    assert reassembler.pending == 0


def test_batch_tail_and_from_frames_round_trip() -> None:
    batch = RecordBatch.from_frames([b"1", b"22", b"333"])
    assert batch.count == 3
    assert list(batch.tail(1).frames()) == [b"22", b"333"]
    assert batch.tail(3).count == 0
    assert list(batch.tail(3).frames()) == []
