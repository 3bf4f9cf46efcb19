"""The guest library's comparisons, through the `flood` sink: `memcmp` (the sink's check of
a frame's pattern: a byte loop to alignment, then sixteen bytes, then words, then bytes)
must see a difference at every offset of every length, and `mac_equal` (how `net_input`
tells the station's own frames) at every byte of the address. A comparison that skips
a word of each sixteen, or a byte of the six, loses frames here."""

from __future__ import annotations

import struct

from emu.testing import Lab, ethernet

SINK_MAC = bytes.fromhex("525400123456")
PEER_MAC = bytes.fromhex("525400000002")
FLOOD_TYPE = 0x88B6
FLOOD_MAGIC = 0x464C4F44
# Frame sizes whose checked lengths (size - 14 - 12) end in every residue mod 16, from
# the shortest frame to the longest.
SIZES = (60, 61, 62, 63, 107, 1514)
UNSEEN_SEQ = 0xFFFFFFFF


def flood_frame(src: bytes, seq: int, count: int, size: int, flip: int | None = None) -> bytes:
    """A frame as `flood mode=send` builds it (payload: magic, seq, count, then byte i is
    i & 0xff), with payload byte `flip` inverted."""
    payload = bytearray(struct.pack(">III", FLOOD_MAGIC, seq, count))
    payload += bytes(i & 0xFF for i in range(12, size - 14))
    if flip is not None:
        payload[flip] ^= 0xFF
    return ethernet(SINK_MAC, src, FLOOD_TYPE, bytes(payload))


def test_every_difference_is_seen_and_only_the_own_address_is_skipped() -> None:
    corrupt = [(size, flip) for size in SIZES for flip in range(12, size - 14)]
    near_own = [SINK_MAC[:i] + bytes([SINK_MAC[i] ^ 0x01]) + SINK_MAC[i + 1:] for i in range(6)]
    count = len(SIZES) + len(corrupt) + len(near_own)
    frames = []
    seq = 1
    for size in SIZES:
        frames.append(flood_frame(PEER_MAC, seq, count, size))
        seq += 1
    for size, flip in corrupt:
        frames.append(flood_frame(PEER_MAC, seq, count, size, flip))
        seq += 1
    for src in near_own:
        # One byte off the sink's own address: another station's frame, to be counted.
        frames.append(flood_frame(src, seq, count, 64))
        seq += 1
        # The sink's own address: skipped (net_input's NET_OWN), so its number is never seen.
        frames.append(flood_frame(SINK_MAC, UNSEEN_SEQ, count, 64))
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        peer = lab.peer("p", "h1")
        sink = lab.machine("flood", f"mode=sink count={count} timeout=5",
                           [f"ne2k_isa,netdev=h0,mac={SINK_MAC.hex(':')}"])
        assert lab.wait_output(sink, "flood: sinking"), sink.output
        for frame in frames:
            peer.send(frame)
        assert lab.run_until(lambda: sink.exit_code is not None, 60), sink.output
    assert (f"flood: received {count} frames, 0 out of order, {len(corrupt)} corrupt"
            in sink.output), sink.output
