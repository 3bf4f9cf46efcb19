"""The examples of docs/testing-kit.md's first-hour sections, as tests: each block marked
```python file=tests/examples/test_first_hour.py``` in the guide is a verbatim slice of this
file (tests/docs/test_doc_examples.py checks that), so the guide's code always runs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(120)


# -- Frames into a QTest NE2000 ----------------------------------------------------------

from emu.testing import BROADCAST, QTest, ethernet  # noqa: E402

IO = 0x300                                   # the board's I/O base (add_ne2000's default)

def test_a_frame_lands_in_the_receive_ring():
    qt = QTest()
    board = qt.add_ne2000()                  # at 0x300, IRQ 9, MAC 52:54:00:12:34:56
    wire = qt.peer(board)
    # The driver's part: ring in pages 0x46..0x80, accept broadcasts, start the chip.
    for offset, value in ((0x00, 0x21), (0x0E, 0x49), (0x01, 0x46), (0x02, 0x80),
                          (0x03, 0x46), (0x0C, 0x04), (0x00, 0x61), (0x07, 0x47),
                          (0x00, 0x22)):
        qt.outb(IO + offset, value)
    frame = ethernet(BROADCAST, "02:00:00:00:00:01", 0x88B5, b"hello".ljust(46, b"."))
    assert wire.send(frame) == 60            # the NIC took all 60 bytes
    assert qt.inb(IO + 0x07) & 0x01          # ISR.PRX: a frame was received
    assert board.chip.mem[0x4704:0x4704 + 60] == frame   # behind its 4-byte header


# -- Acting between two frames -----------------------------------------------------------

from emu.testing import Lab  # noqa: E402


def is_echo_reply(frame, direction):
    return (direction == "tx" and frame[12:14] == b"\x08\x00"   # IPv4, from the hub port
            and frame[23] == 1 and frame[34] == 0)              # ICMP echo reply


def test_the_link_goes_down_right_after_the_first_reply():
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        lab.machine("pingd", "ip=10.0.0.1", ["ne2k_isa,netdev=h0"], name="A")
        b = lab.machine("ping", "ip=10.0.0.2 peer=10.0.0.1 count=4 timeout_ms=200",
                        ["ne2k_isa,netdev=h1"], name="B")
        mon = lab.monitor()

        def cut(frame, direction):
            if is_echo_reply(frame, direction):
                mon.execute("set_link h1 off")    # before B can send anything more
                watch.close()

        watch = lab.on_frame("h1", cut)           # h1: the hub port B's NIC is plugged in
        lab.run_for(0.1)                          # request 2 goes into the dead link
        mon.execute("set_link h1 on")
        assert lab.run_until(lambda: b.exit_code is not None, 10)
        assert "4 packets transmitted, 3 received" in b.output


# -- Your own client on a link -----------------------------------------------------------

from emu.testing import BROADCAST, Middlebox, ethernet  # noqa: E402, F811


class DropEveryThird(Middlebox):
    """A fault injector: every third frame from the network never reaches the NIC."""

    def __init__(self):
        super().__init__("dropper")
        self.count = 0

    def receive(self, frame, came_from):
        if came_from == "net":
            self.count += 1
            if self.count % 3 == 0:
                return                            # dropped
        super().receive(frame, came_from)         # passed on unchanged


def test_a_middlebox_drops_every_third_frame():
    with Lab(deterministic=True) as lab:
        wire = lab.peer("wire")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=wire"])
        lab.splice("wire", DropEveryThird())      # between the peer and echo's NIC
        assert lab.wait_output(echo, "returning every frame", 5)
        for n in range(6):
            wire.send(ethernet(BROADCAST, "02:00:00:00:00:01", 0x88B5, bytes([n]) * 50))
        lab.run_for(0.01)
        assert [frame[14] for frame in wire.received] == [0, 1, 3, 4]
