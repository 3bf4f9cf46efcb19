"""toynic on real networks: `-netdev tap` with the host kernel as the peer (QEMU: net/tap.c)
and `-netdev vde` on Debian's vde_switch (QEMU: net/vde.c).

- tap, inside a network namespace the test creates: the kernel's own `ping -c 5` gets 5/5
  replies from the guest `pingd`; a burst of 2000 frames from a raw socket into the tap
  reaches a slow guest `flood` sink complete and in order (the tap is read no faster
  than the guest's queue drains: reading stops while it is full, and the frames wait in
  the kernel);
- vde, over unix sockets: `ping` and `pingd` on one switch, and on two switches joined by
  `dpipe vde_plug SW1 = vde_plug SW2` (the cable that runs over ssh in real use), 5/5;
- bad input: a missing switch, an over-long ifname: one line, exit status 1.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    COUNT,
    GUESTS,
    PINGD_IP,
    ProcessLab,
    assert_ping_ok,
    finish,
    finish_ok,
    mac,
    wait_output,
)
from tests.netsupport import Proc, in_netns, run_toynic, start_toynic, unavailable
from tests.vdesupport import vde_lab

READY = "pingd: answering"
TAP = "tn0"
FLOOD_FRAMES = 2000
FLOOD_TYPE = 0x88B6
FLOOD_MAGIC = 0x464C4F44


def machine(lab: ProcessLab, program: str, append: str, netdev: str, mac_addr: str,
            *extra: str) -> Proc:
    """One toynic machine running `program` with its NE2000 on `-netdev NETDEV,id=n0`."""
    proc = start_toynic("-kernel", str(GUESTS / f"{program}.elf"), "-append", append,
                        "-netdev", f"{netdev},id=n0",
                        "-device", f"ne2k_isa,netdev=n0,mac={mac_addr}", *extra)
    proc.name = f"toynic {program} ({mac_addr})"
    lab.procs.append(proc)
    return proc


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def quiet_interfaces() -> None:
    """No IPv6 chatter (router solicitations, MLD) on interfaces made from now on."""
    Path("/proc/sys/net/ipv6/conf/default/disable_ipv6").write_text("1")


# --- tap: the host kernel as the peer ------------------------------------------------------

def _host_pings_guest() -> tuple[subprocess.CompletedProcess[str], int, str]:
    quiet_interfaces()
    with ProcessLab() as lab:
        guest = machine(lab, "pingd", f"ip={PINGD_IP} count={COUNT} timeout=30",
                        f"tap,ifname={TAP},script=no,downscript=no", mac(1))
        wait_output(guest, READY)
        ip("addr", "add", "10.0.0.2/24", "dev", TAP)
        ip("link", "set", TAP, "up")
        ping = subprocess.run(["ping", "-c", str(COUNT), "-i", "0.2", "-W", "10", PINGD_IP],
                              capture_output=True, text=True, timeout=120, check=False)
        status, out = finish(guest)
    return ping, status, out


@pytest.mark.netns
def test_the_host_kernel_pings_the_guest_over_a_tap() -> None:
    if shutil.which("ping") is None:
        unavailable("ping is not installed (Debian package iputils-ping)")
    ping, status, out = in_netns(_host_pings_guest, timeout=180)
    assert f"{COUNT} packets transmitted, {COUNT} received, 0% packet loss" in ping.stdout, (
        ping.stdout + ping.stderr + out)
    assert status == 0, out
    for seq in range(1, COUNT + 1):
        assert f"echo reply to 10.0.0.2 icmp_seq={seq} " in out, out


def flood_frame(seq: int, dst: bytes, size: int = 64) -> bytes:
    """What the `flood` guest sends: magic, sequence number, count, then byte i = i."""
    src = bytes.fromhex("0200000000aa")
    head = (FLOOD_MAGIC.to_bytes(4, "big") + seq.to_bytes(4, "big")
            + FLOOD_FRAMES.to_bytes(4, "big"))
    payload = head + bytes(i & 0xFF for i in range(12, size - 14))
    return dst + src + FLOOD_TYPE.to_bytes(2, "big") + payload


def _tap_stats() -> dict[str, int]:
    out = subprocess.run(["ip", "-s", "-j", "link", "show", TAP], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    tx = json.loads(out)[0]["stats64"]["tx"]
    return {"tx_packets": tx["packets"], "tx_dropped": tx["dropped"]}


def _flood_into_guest(trace_file: str) -> tuple[str, int, dict[str, int], str]:
    quiet_interfaces()
    guest_mac = mac(1)
    # A persistent tap the machine attaches to, so its counters outlive the machine; with
    # room in the kernel for the whole burst: whatever toynic does not read yet waits
    # there, so a loss could only be toynic's.
    ip("tuntap", "add", "dev", TAP, "mode", "tap")
    ip("link", "set", TAP, "txqueuelen", str(2 * FLOOD_FRAMES), "up")
    with ProcessLab() as lab:
        sink = machine(lab, "flood", f"mode=sink count={FLOOD_FRAMES} delay=200 timeout=30",
                       f"tap,ifname={TAP},script=no,downscript=no", guest_mac,
                       "-trace", "net_tap_backpressure", "-D", trace_file)
        wait_output(sink, "flood: sinking")
        dst = bytes.fromhex(guest_mac.replace(":", ""))
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
            raw.bind((TAP, 0))
            for seq in range(1, FLOOD_FRAMES + 1):
                raw.send(flood_frame(seq, dst))
        status, out = finish(sink, timeout=180)
    return out, status, _tap_stats(), Path(trace_file).read_text()


@pytest.mark.netns
def test_a_flood_through_the_tap_loses_nothing(tmp_path: Path) -> None:
    out, status, stats, trace = in_netns(_flood_into_guest, str(tmp_path / "trace.log"),
                                         timeout=240)
    assert f"flood: received {FLOOD_FRAMES} frames, 0 out of order, 0 corrupt" in out, out
    assert status == 0, out
    # the kernel dropped nothing and handed toynic every frame (tun counts a frame as
    # transmitted when toynic reads it)
    assert stats["tx_dropped"] == 0, stats
    assert stats["tx_packets"] >= FLOOD_FRAMES, stats
    # the slow sink made toynic stop reading the tap, and start again
    assert "net_tap_backpressure netdev=n0 dir=read state=on" in trace, trace[:2000]
    assert "net_tap_backpressure netdev=n0 dir=read state=off" in trace, trace[:2000]


# --- vde: machines on vde_switch -----------------------------------------------------------

def test_two_machines_on_one_vde_switch_ping(lab: ProcessLab) -> None:
    with vde_lab() as (switch,):
        netdev = f"vde,sock={switch.directory}"
        pingd = machine(lab, "pingd", f"ip={PINGD_IP} count={COUNT} timeout=30", netdev,
                        mac(1))
        wait_output(pingd, READY)
        ping = machine(lab, "ping", f"ip=10.0.0.2 peer={PINGD_IP} count={COUNT} timeout=10",
                       netdev, mac(2))
        assert_ping_ok(finish_ok(ping), finish_ok(pingd), "10.0.0.2")


def test_two_switches_joined_by_a_vde_plug_cable_carry_the_ping(lab: ProcessLab) -> None:
    with vde_lab(switches=2, cable=True) as (one, other):
        pingd = machine(lab, "pingd", f"ip={PINGD_IP} count={COUNT} timeout=30",
                        f"vde,sock={one.directory}", mac(1))
        wait_output(pingd, READY)
        ping = machine(lab, "ping", f"ip=10.0.0.2 peer={PINGD_IP} count={COUNT} timeout=10",
                       f"vde,sock={other.directory}", mac(2))
        assert_ping_ok(finish_ok(ping), finish_ok(pingd), "10.0.0.2")


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize(("netdev", "expected"), [
    ("vde,id=v,sock=/nonexistent/switch",
     "toynic: -netdev vde,id=v,sock=/nonexistent/switch: could not connect to VDE switch "
     "/nonexistent/switch: No such file or directory (is vde_switch running with -s on "
     "that directory?)"),
    ("tap,id=t,ifname=much-too-long-name",
     "toynic: -netdev tap,id=t,ifname=much-too-long-name: ifname 'much-too-long-name' is too "
     "long: an interface name has at most 15 bytes"),
])
def test_bad_input_is_one_line_and_status_1(netdev: str, expected: str) -> None:
    done = run_toynic("-netdev", netdev)
    assert (done.returncode, done.stderr) == (1, expected + "\n")
