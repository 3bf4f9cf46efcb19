"""Raw Ethernet guests over a stream socket: two `hello-eth` machines greet each other, and
the lossless stream test — `flood` sends 20,000 frames to a slow `flood` sink, which
must count every one of them, in order and intact (the NIC's full ring holds the
socket back instead of dropping; QEMU: qemu_flush_queued_packets / can_receive)."""

from __future__ import annotations

from tests.e2e.conftest import ProcessLab, finish_ok, mac, wait_output
from tests.netsupport import LOOPBACK, free_port

FLOOD_FRAMES = 20_000


def test_hello_eth_two_machines_greet_each_other(lab: ProcessLab) -> None:
    port = free_port()
    append = "count=3 interval=50 timeout=10"
    a = lab.machine("hello-eth", append, f"listen={LOOPBACK}:{port}", mac(1))
    wait_output(a, "hello-eth: sending")
    b = lab.machine("hello-eth", append, f"connect={LOOPBACK}:{port}", mac(2))
    outs = finish_ok(b), finish_ok(a)
    for out, other in zip(outs, (mac(1), mac(2)), strict=True):
        for k in (1, 2, 3):
            assert (f'received 60 bytes from {other} type 0x88b5: "hello {k} from {other}"'
                    in out), out
        assert "hello-eth: done, sent 3, received 3 greetings" in out, out


def test_flood_into_a_slow_sink_loses_nothing(lab: ProcessLab) -> None:
    port = free_port()
    sink = lab.machine("flood", f"mode=sink count={FLOOD_FRAMES} delay=5 timeout=10",
                       f"listen={LOOPBACK}:{port}", mac(1))
    wait_output(sink, "flood: sinking")
    sender = lab.machine("flood", f"mode=send size=64 count={FLOOD_FRAMES} timeout=120",
                         f"connect={LOOPBACK}:{port}", mac(2))
    sink_out = finish_ok(sink, timeout=150)
    sender_out = finish_ok(sender, timeout=30)
    assert f"flood: received {FLOOD_FRAMES} frames, 0 out of order, 0 corrupt" in sink_out
    assert "arrived when" not in sink_out
    assert f"flood: sent {FLOOD_FRAMES} frames of 64 bytes" in sender_out
    assert "0 transmit timeouts" in sender_out
    assert (f"flood: sink acknowledged {FLOOD_FRAMES} frames (0 out of order, 0 corrupt)"
            in sender_out), sender_out
