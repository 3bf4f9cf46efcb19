"""The HMP monitor in-process (emu.monitor.hmp): QEMU's output formats, set_link semantics,
one-line errors; the chardev it is served on is tests/unit/test_monitor_chardev.py."""

from __future__ import annotations

import re

import pytest

from emu.core.loop import MainLoop
from emu.core.trace import Trace
from emu.monitor.hmp import Monitor, parse_format
from emu.testing import Lab, ethernet, free_port
from netdev.net import Net

pytestmark = pytest.mark.timeout(60)

OTHER = bytes.fromhex("020000000001")


def test_info_network_has_qemu_layout_for_hub_and_nic() -> None:
    """The same topology QEMU 7.2 printed (captured with -M pc, ne2k_isa id=nic0):
    hub first, its ports newest-first, then the NIC with its peer on a ` \\ ` line."""
    port = free_port()
    with Lab() as lab:
        lab.netdev(f"socket,id=n0,listen=127.0.0.1:{port}")
        lab.netdev(f"socket,id=n1,connect=127.0.0.1:{port}")
        lab.netdev("hubport,id=hp0,hubid=0,netdev=n1")
        lab.netdev("hubport,id=hp1,hubid=0")
        lab.machine("hello", devices=["ne2k_isa,netdev=n0,id=nic0"])
        text = lab.monitor().execute("info network")
    assert text == (
        "hub 0\n"
        " \\ hp1\n"
        f" \\ hp0: n1: index=0,type=socket,socket: connect to 127.0.0.1:{port}\n"
        "nic0: index=0,type=nic,model=ne2k_isa,macaddr=52:54:00:12:34:56\n"
        " \\ n0: index=0,type=socket,\n")


def test_set_link_off_stops_frames_both_ways_and_on_restores() -> None:
    with Lab() as lab:
        peer = lab.peer("p0")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=p0"])
        monitor = lab.monitor(echo)
        assert lab.wait_output(echo, "returning every frame", 20)
        nic = echo.nic
        frame = ethernet(nic.mac, OTHER, 0x88B5, bytes(range(50)))

        assert monitor.execute("set_link p0 off") == ""
        assert nic.nc.link_down and peer.link_down  # the peer is a NIC: both go down
        peer.send(frame)
        nic.nc.send(frame)  # what the chip's transmit does
        lab.run_until(lambda: False, 0.2)
        assert nic.stats.offered == 0  # wire -> NIC dropped
        assert peer.received == []  # NIC -> wire dropped

        assert monitor.execute("set_link p0 on") == ""
        peer.send(frame)
        assert lab.run_until(lambda: peer.received, 20)
        assert peer.received[0][6:12] == nic.mac and peer.received[0][:6] == OTHER


def test_set_link_on_a_nic_leaves_its_netdev_alone() -> None:
    with Lab() as lab:
        peer = lab.peer("p0")
        machine = lab.machine("hello", devices=["ne2k_isa,netdev=p0"])
        lab.monitor(machine).execute("set_link ne2k_isa.0 off")
        assert machine.nic.nc.link_down and not peer.link_down


def test_guest_ping_reports_loss_while_link_is_off() -> None:
    """Two machines on hub 0 in a deterministic lab: ping's requests stop while `a` is
    off. The link goes off after the first reply and on again when ping reports the
    first loss; the request for icmp_seq=3, sent in that same quantum, is lost too."""
    with Lab(deterministic=True) as lab:
        for name in ("a", "b"):
            lab.netdev(f"hubport,id={name},hubid=0")
        lab.machine("pingd", "ip=10.0.0.1", ["ne2k_isa,netdev=b"])
        ping = lab.machine("ping", "ip=10.0.0.2 peer=10.0.0.1 count=5 timeout=1",
                           ["ne2k_isa,netdev=a"])
        monitor = lab.monitor()
        assert lab.wait_output(ping, "icmp_seq=1 ttl=", 30), ping.output
        monitor.execute("set_link a off")
        assert lab.wait_output(ping, "no reply for icmp_seq=", 30), ping.output
        monitor.execute("set_link a on")
        assert lab.run_until(lambda: ping.exit_code is not None, 60), ping.output
    replied = [int(seq) for seq in re.findall(r"icmp_seq=(\d) ttl=", ping.output)]
    lost = [int(seq) for seq in re.findall(r"no reply for icmp_seq=(\d)", ping.output)]
    assert (replied, lost) == ([1, 4, 5], [2, 3]), ping.output
    assert "5 packets transmitted, 3 received, 40% packet loss" in ping.output
    assert ping.exit_code == 1


@pytest.mark.parametrize(("line", "error"), [
    ("foo", "unknown command: 'foo'\n"),
    ("info foo", "unknown command: 'info foo'\n"),
    ("set_link nosuch on", "Error: Device 'nosuch' not found\n"),
    ("set_link p0", "Expected 'on' or 'off' (try \"help set_link\")\n"),
    ("set_link p0 maybe", "Expected 'on' or 'off' (try \"help set_link\")\n"),
    ("set_link", "set_link: string expected\n"),
    ("x/2z 0x80000000", "invalid char in format: 'z'\n"),
    ("x/4x", "unexpected end of expression (try \"help x\")\n"),
    ("x/4x nonsense", "invalid char 'n' in expression\n"),
    ("quit now", "quit: extraneous characters at the end of line\n"),
    ("x/99999x 0x80000000", "x: at most 4096 units per dump\n"),
])
def test_bad_commands_get_one_line(line: str, error: str) -> None:
    with Lab() as lab:
        lab.peer("p0")
        machine = lab.machine("hello", devices=["ne2k_isa,netdev=p0"])
        monitor = lab.monitor(machine)
        assert monitor.execute(line) == error
        assert not monitor.quit_requested


def test_relay_monitor_has_only_network_commands() -> None:
    with Lab() as lab:
        lab.netdev("hubport,id=h0,hubid=1")
        monitor = lab.monitor()
        assert monitor.execute("info registers") == "unknown command: 'info registers'\n"
        assert monitor.execute("x/4x 0") == "unknown command: 'x/4x'\n"
        assert "set_link name on|off" in monitor.execute("help")
        assert "x /fmt" not in monitor.execute("help")
        assert monitor.execute("info network") == "hub 1\n \\ h0\n"


def test_info_registers_and_memory_dump_formats() -> None:
    with Lab() as lab:
        machine = lab.machine("hello")
        cpu = machine.machine.cpu
        for i in range(1, 32):
            cpu.x[i] = 0x01010101 * i & 0xFFFFFFFF
        ram = machine.machine.ram.data
        ram[0:20] = bytes(range(1, 21))
        monitor = lab.monitor(machine)
        regs = monitor.execute("info registers").splitlines()
        dump = monitor.execute("x/6x 0x80000000")
        dump_b = monitor.execute("x/10xb 0x80000000")
        dump_h = monitor.execute("xp/3xh 0x80000000")
        dump_d = monitor.execute("x/2d $zero + 0x80000000")
        outside = monitor.execute("x/2x 0x7ffffffc")
    assert regs[0] == "CPU#0"
    assert re.fullmatch(r" pc       [0-9a-f]{8}", regs[1])
    assert " x12/a2   0c0c0c0c x13/a3   0d0d0d0d x14/a4   0e0e0e0e x15/a5   0f0f0f0f" in regs
    assert " x0/zero  00000000 x1/ra    01010101 x2/sp    02020202 x3/gp    03030303" in regs
    assert any(line.startswith(" mcause   ") for line in regs)
    assert dump == ("80000000: 0x04030201 0x08070605 0x0c0b0a09 0x100f0e0d\n"
                    "80000010: 0x14131211 0x" + ram[20:24][::-1].hex() + "\n")
    assert dump_b == ("80000000: 0x01 0x02 0x03 0x04 0x05 0x06 0x07 0x08\n"
                      "80000008: 0x09 0x0a\n")
    assert dump_h == "0000000080000000: 0x0201 0x0403 0x0605\n"
    assert dump_d == f"80000000: {0x04030201:10d} {0x08070605:10d}\n"
    assert outside == "7ffffffc: Cannot access memory\n"


def test_info_ne2000_shows_registers_by_page_and_ring() -> None:
    with Lab() as lab:
        peer = lab.peer("p0")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=p0"])
        assert lab.wait_output(echo, "returning every frame", 20)
        peer.send(ethernet(b"\x01\x00\x5e\x00\x00\x01", OTHER, 0x88B5, bytes(50)))
        lab.run_until(lambda: echo.nic.stats.offered == 1, 10)
        text = lab.monitor(echo).execute("info ne2000")
    chip = echo.nic.chip
    assert text.startswith("ne2k_isa.0: model=ne2k_isa,macaddr=52:54:00:12:34:56,link=up,peer=p0")
    for page in ("page 0 read:", "page 0 write:", "page 1:", "page 2 read:"):
        assert page in text
    assert f"PSTART=0x{chip.pstart >> 8:02x} PSTOP=0x{chip.pstop >> 8:02x}" in text
    assert f"BNRY=0x{chip.bnry:02x} CURR=0x{chip.curr:02x}" in text
    assert "PAR=52:54:00:12:34:56" in text
    assert "RCR=0x04 (AB)" in text
    assert "filtered: multicast_off=1" in text


def test_parse_format() -> None:
    assert parse_format("x", "") == (1, "x", 4)
    assert parse_format("x", "20xb") == (20, "x", 1)
    assert parse_format("x", "3dh") == (3, "d", 2)


def test_trace_event_switches_events_and_info_trace_events_shows_state() -> None:
    loop = MainLoop()
    net = Net(loop)
    trace = Trace()
    try:
        monitor = Monitor(net, trace=trace)
        assert monitor.execute("info trace-events ne2000_transmit") == (
            "ne2000_transmit : state 0\n"
        )
        assert monitor.execute("trace-event ne2000_* on") == ""
        assert trace.ne2000_transmit and trace.ne2000_receive
        assert "ne2000_transmit : state 1\n" in monitor.execute("info trace-events")
        assert monitor.execute("trace-event ne2000_transmit off") == ""
        assert not trace.ne2000_transmit
        assert monitor.execute("trace-event nosuch on") == "could not find event 'nosuch'\n"
        assert monitor.execute("trace-event ne2000_transmit maybe") == (
            "trace-event: expected 'name on|off'\n"
        )
    finally:
        trace.close()
        net.close()
        loop.close()
