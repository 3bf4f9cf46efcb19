"""`-netdev vde` in-process against a real vde_switch (QEMU: net/vde.c; libvdeplug's
protocol): frames cross the switch both ways, QEMU's info string, port= and mode=, the
queue contract (reading stops while the peer is full), one-line errors, cleanup."""

from __future__ import annotations

import io
import os
import stat

import pytest

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.core.trace import Trace
from emu.testing import RecordingClient
from netdev import vde
from netdev.client import connect_peers
from netdev.vde import VdeNetdev, create_vde_netdev
from tests.vdesupport import vde_lab

TIMEOUT = 10.0
BROADCAST = b"\xff" * 6


def frame(src: int, payload: bytes) -> bytes:
    """A broadcast Ethernet frame from 52:54:00:00:00:src (the switch floods it)."""
    return BROADCAST + bytes([0x52, 0x54, 0, 0, 0, src]) + b"\x88\xb5" + payload.ljust(46, b".")


@pytest.fixture
def loop() -> MainLoop:
    main = MainLoop()
    yield main
    main.close()


def plug(loop: MainLoop, text: str, name: str) -> tuple[VdeNetdev, RecordingClient]:
    client = create_vde_netdev(loop, name, parse_opts(f"vde,id={name},{text}", "type"))
    nic = RecordingClient(f"nic-{name}")
    connect_peers(nic, client)
    return client, nic


def test_two_ports_of_one_switch_exchange_frames(loop: MainLoop) -> None:
    with vde_lab() as (switch,):
        a, nic_a = plug(loop, f"sock={switch.directory}", "a")
        b, nic_b = plug(loop, f"sock={switch.directory}", "b")
        try:
            assert a.info_str == f"sock={switch.directory},fd={a.fd}"
            nic_a.send(frame(1, b"a->b"))
            nic_b.send(frame(2, b"b->a" * 300))
            assert loop.run_until(lambda: nic_a.received and nic_b.received, TIMEOUT)
            assert nic_b.received == [frame(1, b"a->b")]
            assert nic_a.received == [frame(2, b"b->a" * 300)]
        finally:
            a.cleanup()
            b.cleanup()


def test_port_mode_and_cleanup(loop: MainLoop) -> None:
    with vde_lab() as (switch,):
        before = set(os.listdir(switch.directory))
        a, _ = plug(loop, f"sock={switch.directory},port=5,mode=0770", "a")
        ours = set(os.listdir(switch.directory)) - before
        # our datagram socket (.PID-N) and the switch's for port 5 (005.FD)
        mine = [n for n in ours if n.startswith(".")]
        assert len(mine) == 1 and any(n.startswith("005.") for n in ours), ours
        assert stat.S_IMODE(os.stat(switch.directory / mine[0]).st_mode) == 0o770
        a.cleanup()
        assert not (switch.directory / mine[0]).exists()
        assert a.fd is None


def test_port_beyond_the_switch_is_one_line(loop: MainLoop,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # vde_switch (32 ports) neither answers nor closes: toynic gives up after a while
    monkeypatch.setattr(vde, "ANSWER_TIMEOUT", 1.0)
    with vde_lab() as (switch,):
        with pytest.raises(UserError) as err:
            plug(loop, f"sock={switch.directory},port=100", "a")
        assert str(err.value) == (f"VDE switch {switch.directory} gave no port within 1 s "
                                  "(is port 100 beyond its ports?)")
        # our datagram socket is gone again
        assert not [n for n in os.listdir(switch.directory) if n.startswith(".")]


@pytest.mark.parametrize(("text", "expected"), [
    ("sock=/nonexistent/switch", "could not connect to VDE switch /nonexistent/switch: "
                                 "No such file or directory"),
    ("sock=/tmp,port=x", "Parameter 'port' expects a number, not 'x'"),
    ("sock=/tmp,mode=0999", "Parameter 'mode' expects a number, not '0999'"),
    ("sock=/tmp,mode=01777", "mode=01777 is not a permission mode"),
    ("sock=/tmp,group=no-such-group-here", "group 'no-such-group-here' does not exist"),
    ("sock=/tmp,bogus=1", "Parameter 'bogus' is unexpected"),
])
def test_bad_options_are_one_line_errors(loop: MainLoop, text: str, expected: str) -> None:
    with pytest.raises(UserError) as err:
        plug(loop, text, "a")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_reading_stops_while_the_peer_is_full(loop: MainLoop) -> None:
    trace = Trace()
    trace.enable("net_vde_backpressure")
    out = io.StringIO()
    trace.open_log(out)

    def lines() -> list[str]:
        return out.getvalue().splitlines()

    with vde_lab() as (switch,):
        a, nic_a = plug(loop, f"sock={switch.directory}", "a")
        b, nic_b = plug(loop, f"sock={switch.directory}", "b")
        b.set_trace(trace)
        try:
            nic_b.accepting = False
            for n in range(3):
                nic_a.send(frame(1, b"%d" % n))
            assert loop.run_until(lines, TIMEOUT)
            assert lines() == ["net_vde_backpressure netdev=b dir=read state=on"]
            # held: one frame waits in the queue, the other two in the kernel
            assert len(nic_b.incoming_queue) == 1 and b.stats.frames_in == 1
            nic_b.resume()
            assert loop.run_until(lambda: len(nic_b.received) == 3, TIMEOUT)
            assert nic_b.received == [frame(1, b"%d" % n) for n in range(3)]
            assert "net_vde_backpressure netdev=b dir=read state=off" in lines()
        finally:
            a.cleanup()
            b.cleanup()
            trace.close()


def test_switch_going_away_is_reported_once(loop: MainLoop) -> None:
    reports: list[str] = []
    with vde_lab() as (switch,):
        a, nic_a = plug(loop, f"sock={switch.directory}", "a")
        a.report = reports.append
        switch.close()
        assert loop.run_until(lambda: reports, TIMEOUT)
        # a frame sent afterwards is dropped at once (the write fails), nothing raises
        nic_a.send(frame(1, b"gone"))
        assert a.stats.write_errors == 1 and not a.incoming_queue
        assert reports == ["toynic: netdev a: the VDE switch closed the control connection; "
                           "frames to it are dropped"]
        a.cleanup()

