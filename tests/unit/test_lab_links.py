"""Frame-level control in a Lab (docs/testing-kit.md, "Acting between two frames" and
"Your own client on a link"): on_frame callbacks act exactly between two frames,
run_until_frame, a user-written Middlebox spliced into a link, and the warning for
free-running multi-machine labs without icount sleep."""

from __future__ import annotations

import struct

import pytest

from emu.core.errors import UserError
from emu.testing import BROADCAST, Lab, LabMachine, ethernet
from emu.testing.links import Middlebox

PINGD = "ip=10.0.0.1 count=0"
PING = "ip=10.0.0.2 peer=10.0.0.1 count=4 timeout_ms=200"


def is_echo(frame: bytes, icmp_type: int) -> bool:
    """An IPv4 ICMP echo request (8) or reply (0)."""
    return (frame[12:14] == b"\x08\x00" and len(frame) > 34 and frame[23] == 1
            and frame[34] == icmp_type)


def two_machines(lab: Lab) -> tuple[LabMachine, LabMachine]:
    lab.netdev("hubport,id=h0,hubid=0")
    lab.netdev("hubport,id=h1,hubid=0")
    a = lab.machine("pingd", PINGD, ["ne2k_isa,netdev=h0"], name="A")
    b = lab.machine("ping", PING, ["ne2k_isa,netdev=h1"], name="B")
    return a, b


def test_link_off_after_exactly_one_reply_loses_exactly_one_frame() -> None:
    with Lab(deterministic=True) as lab:
        _, b = two_machines(lab)
        at_a: list[bytes] = []
        lab.on_frame("h0", lambda frame, direction: at_a.append(frame)
                     if direction == "tx" else None)

        def first_reply(frame: bytes, direction: str) -> None:
            # h1 sends to B's NIC ("tx"): the first echo reply has just been delivered.
            if direction == "tx" and is_echo(frame, 0):
                lab.net.set_link("h1", False)
                watch.close()

        watch = lab.on_frame("h1", first_reply)
        assert lab.run_until(lambda: lab.net.find_netdev("h1").link_down, 5)
        lab.run_for(0.05)                # B sends request 2 into the dead link
        lab.net.set_link("h1", True)
        assert lab.run_until(lambda: b.exit_code is not None, 10), b.output
        assert "4 packets transmitted, 3 received" in b.output
        requests = [f for f in at_a if is_echo(f, 8)]
        assert [struct.unpack("!H", f[40:42])[0] for f in requests] == [1, 3, 4]


def test_run_until_frame_returns_the_matching_frame() -> None:
    with Lab(deterministic=True) as lab:
        _, b = two_machines(lab)
        reply = lab.run_until_frame("h1", lambda f, d: d == "tx" and is_echo(f, 0), 5)
        assert reply is not None and is_echo(reply, 0)
        assert "ping" in b.output and b.exit_code is None
        assert lab.run_until_frame("h1", lambda f, d: False, 0.01) is None


class Corrupter(Middlebox):
    """A user-written fault injector: flips the last byte of every second frame going
    to the NIC and answers frames of EtherType 0x88B6 itself."""

    def __init__(self) -> None:
        super().__init__("corrupter")
        self.seen = 0

    def receive(self, frame: bytes, came_from: str) -> None:
        if frame[12:14] == b"\x88\xb6":
            self.send(frame[6:12] + frame[:6] + frame[12:], came_from)
            return
        if came_from == "net":
            self.seen += 1
            if self.seen % 2 == 0:
                frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        super().receive(frame, came_from)


def test_a_user_written_middlebox_between_a_nic_and_its_netdev() -> None:
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        wire = lab.peer("wire")
        lab.netdev("hubport,id=h1,hubid=0")
        lab.peer("other", "h1")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=h0"])
        box = lab.splice("h0", Corrupter())
        assert lab.wait_output(echo, "returning every frame", 5)
        sender = lab.peers["other"]
        frames = [ethernet(BROADCAST, "02:00:00:00:00:01", 0x88B5, bytes([n]) * 50)
                  for n in range(4)]
        for frame in frames:
            sender.send(frame)
        sender.send(ethernet(BROADCAST, "02:00:00:00:00:01", 0x88B6, b"ping".ljust(46)))
        assert lab.run_until(lambda: len(sender.received) == 5, 5)
        answered, echoed = sender.received[0], sender.received[1:]
        assert answered[12:14] == b"\x88\xb6"       # by the box, at once: echo never saw it
        # Every second frame reached echo corrupted and came back that way.
        assert [f[-1] for f in echoed] == [0, 0xFE, 2, 0xFC]
        assert echo.nic.stats.accepted == 4
        assert wire.received == []
        assert "corrupter.nic" in lab.monitor().execute("info network")
        assert box.nic_side.peer is echo.nic.nc


def test_a_middlebox_joins_two_hubs() -> None:
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=a0,hubid=0")
        lab.netdev("hubport,id=a1,hubid=0")
        lab.netdev("hubport,id=b0,hubid=1")
        lab.netdev("hubport,id=b1,hubid=1")
        left, right = lab.peer("left", "a0"), lab.peer("right", "b0")
        lab.splice("a1", Middlebox(), to="b1")
        frame = ethernet(BROADCAST, "02:00:00:00:00:01", 0x88B5, bytes(50))
        left.send(frame)
        assert lab.run_until(lambda: right.received, 1)
        assert right.received == [frame]


def test_splice_needs_a_peer_or_two_free_netdevs() -> None:
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        lab.peer("p", "h1")
        with pytest.raises(UserError, match="has no peer yet"):
            lab.splice("h0", Middlebox())
        with pytest.raises(UserError, match="already in use"):
            lab.splice("h0", Middlebox(), to="h1")


def test_two_free_running_machines_without_icount_sleep_warn() -> None:
    with Lab() as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        lab.machine("pingd", PINGD, ["ne2k_isa,netdev=h0"], icount_sleep=False)
        with pytest.warns(RuntimeWarning, match=r"Lab\(deterministic=True\)"):
            lab.machine("ping", PING, ["ne2k_isa,netdev=h1"], icount_sleep=False)
