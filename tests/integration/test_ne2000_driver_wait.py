"""The guest driver's wait (guests/lib/ne2000.c: ne2k_recv, ne2k_wait): RX is acknowledged
before each look at the ring, so a frame that arrives at any instruction between the
look that finds the ring empty and the `wfi` raises the interrupt again and is not
left in the ring while the guest sleeps. On the deterministic timeline a peer's frame
arrives at an exact instruction count, so the test sweeps a second frame's arrival
over every instruction of the echo guest's loop after a first one. And ne2k_recv reads
a frame's header and data in one remote DMA, whatever the frame's length or place in
the ring."""

from __future__ import annotations

import io

from emu.testing import FramePeer, Lab, LabMachine, ethernet

GUEST_MAC = bytes.fromhex("525400123456")
PEER_MAC = bytes.fromhex("525400000002")
# Virtual ns (one per instruction) from the first frame's arrival to the second's: the
# echo guest answers a frame and is back in wfi within about 800 instructions.
SWEEP_NS = range(0, 1200)
IDLE_NS = 20_000


def echo_beside_a_peer(lab: Lab) -> tuple[FramePeer, LabMachine]:
    """The echo guest and a peer on one hub, the guest up and waiting for frames."""
    lab.netdev("hubport,id=h0,hubid=0")
    lab.netdev("hubport,id=h1,hubid=0")
    peer = lab.peer("p", "h1")
    guest = lab.machine("echo", "", [f"ne2k_isa,netdev=h0,mac={GUEST_MAC.hex(':')}"])
    assert lab.wait_output(guest, "echo: returning"), guest.output
    return peer, guest


def test_a_frame_arriving_anywhere_in_the_echo_loop_is_echoed() -> None:
    with Lab(deterministic=True) as lab:
        peer, guest = echo_beside_a_peer(lab)
        echoed = 0
        for gap in SWEEP_NS:
            start = lab.now_ns + IDLE_NS
            for seq, at in enumerate((start, start + gap)):
                payload = (2 * gap + seq).to_bytes(4, "big").ljust(46, b"\0")
                peer.send(ethernet(GUEST_MAC, PEER_MAC, 0x88B5, payload), at_ns=at)
            echoed += 2
            assert lab.run_until(lambda want=echoed: len(peer.received) == want, 5), \
                (gap, guest.output)
        assert [int.from_bytes(f[14:18], "big") for f in peer.received] == list(range(echoed))


def test_a_received_frame_is_read_in_one_remote_dma() -> None:
    """Header and frame in one remote read (the transfer is ended by the next setup, not
    by its count): a start of a remote read per frame, whatever its length, also when
    the frame wraps from the ring's end to its start, and every byte echoed."""
    sizes = [60 + (i * 337) % 1455 for i in range(60)]
    with Lab(deterministic=True) as lab:
        peer, guest = echo_beside_a_peer(lab)
        chip = guest.nic.chip
        log = io.StringIO()
        lab.trace("ne2000_dma_start", log)
        wraps = 0
        sent = []
        for i, size in enumerate(sizes):
            payload = bytes((i + k) & 0xFF for k in range(size - 14))
            frame = ethernet(GUEST_MAC, PEER_MAC, 0x88B5, payload)
            sent.append(frame)
            curr = chip.curr
            peer.send(frame)
            assert lab.run_until(lambda want=i + 1: len(peer.received) == want, 5), guest.output
            wraps += chip.curr < curr
        assert wraps >= 2
        assert log.getvalue().count("dir=read") == len(sizes)
        assert [bytes(f) for f in peer.received] == [f[6:12] + f[:6] + f[12:] for f in sent]
