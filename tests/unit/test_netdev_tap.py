"""`-netdev tap` in-process, inside network namespaces the tests create (QEMU: net/tap.c,
net/tap-linux.c): frames cross the tap both ways, QEMU's info strings, script= and
downscript=, fd=, the queue contract (reading stops while the peer is full), and the
one-line errors (bad ifname, name in use, not a tap, not permitted, missing script)."""

from __future__ import annotations

import fcntl
import io
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.core.trace import Trace
from emu.testing import RecordingClient
from netdev.client import connect_peers
from netdev.tap import (
    IFF_NO_PI,
    IFF_TAP,
    IFF_TUN,
    IFF_VNET_HDR,
    TUNSETIFF,
    TapNetdev,
    check_ifname,
    create_tap_netdev,
)
from tests.netsupport import in_netns

TIMEOUT = 10.0
ETH_TYPE = 0x88B5
NIC_MAC = bytes.fromhex("525400000001")


def frame(payload: bytes, dst: bytes = NIC_MAC) -> bytes:
    src = bytes.fromhex("0200000000aa")
    return dst + src + ETH_TYPE.to_bytes(2, "big") + payload.ljust(46, b".")


def quiet_interfaces() -> None:
    """No IPv6 chatter (router solicitations, MLD) on interfaces made from now on."""
    Path("/proc/sys/net/ipv6/conf/default/disable_ipv6").write_text("1")


def link_up(ifname: str) -> None:
    subprocess.run(["ip", "link", "set", ifname, "up"], check=True, capture_output=True)


def tap(loop: MainLoop, text: str, name: str = "t0") -> tuple[TapNetdev, RecordingClient]:
    client = create_tap_netdev(loop, name, parse_opts(f"tap,id={name},{text}", "type"))
    nic = RecordingClient(f"nic-{name}")
    connect_peers(nic, client)
    return client, nic


def ours(frames: list[bytes]) -> list[bytes]:
    return [f for f in frames if f[12:14] == ETH_TYPE.to_bytes(2, "big")]


def raw_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_TYPE))
    sock.bind((ifname, 0))
    sock.settimeout(TIMEOUT)
    return sock


# --- frames both ways ---------------------------------------------------------------------

def _both_ways() -> tuple[str, list[bytes], bytes]:
    quiet_interfaces()
    loop = MainLoop()
    client, nic = tap(loop, "ifname=tn0,script=no,downscript=no")
    try:
        link_up("tn0")
        with raw_socket("tn0") as host:
            nic.send(frame(b"guest->host", dst=b"\xff" * 6))
            from_guest = host.recv(2048)
            for n in range(3):
                host.send(frame(b"host->guest %d" % n))
            loop.run_until(lambda: len(ours(nic.received)) == 3, TIMEOUT)
        return client.info_str, ours(nic.received), from_guest
    finally:
        client.cleanup()
        loop.close()


@pytest.mark.netns
def test_frames_cross_the_tap_both_ways() -> None:
    info, to_guest, from_guest = in_netns(_both_ways)
    assert info == "ifname=tn0,script=no,downscript=no"
    assert from_guest == frame(b"guest->host", dst=b"\xff" * 6)
    assert to_guest == [frame(b"host->guest %d" % n) for n in range(3)]


# --- backpressure --------------------------------------------------------------------------

def _backpressure() -> tuple[list[str], int, int, list[bytes]]:
    quiet_interfaces()
    loop = MainLoop()
    trace = Trace()
    trace.enable("net_tap_backpressure")
    out = io.StringIO()
    trace.open_log(out)
    client, nic = tap(loop, "ifname=tn0,script=no,downscript=no")
    client.set_trace(trace)
    try:
        link_up("tn0")
        nic.accepting = False
        with raw_socket("tn0") as host:
            for n in range(20):
                host.send(frame(b"%d" % n))
            loop.run_until(lambda: out.getvalue(), TIMEOUT)
            held = (client.stats.frames_in, len(nic.incoming_queue))
            nic.resume()
            loop.run_until(lambda: len(ours(nic.received)) == 20, TIMEOUT)
        return out.getvalue().splitlines(), held[0], held[1], ours(nic.received)
    finally:
        client.cleanup()
        trace.close()
        loop.close()


@pytest.mark.netns
def test_reading_stops_while_the_peer_is_full_and_nothing_is_lost() -> None:
    lines, read_while_full, queued, received = in_netns(_backpressure)
    # one frame read and queued at the full peer; the other 19 wait in the kernel
    assert (read_while_full, queued) == (1, 1)
    assert lines[0] == "net_tap_backpressure netdev=t0 dir=read state=on"
    assert "net_tap_backpressure netdev=t0 dir=read state=off" in lines
    assert received == [frame(b"%d" % n) for n in range(20)]


# --- scripts -------------------------------------------------------------------------------

def _scripts(workdir: str) -> tuple[str, str, str]:
    log = Path(workdir) / "log"
    up = Path(workdir) / "up"
    down = Path(workdir) / "down"
    up.write_text(f'#!/bin/sh\necho "up $1" >> {log}\nip link set "$1" up\n')
    down.write_text(f'#!/bin/sh\necho "down $1" >> {log}\n')
    up.chmod(0o755)
    down.chmod(0o755)
    loop = MainLoop()
    client, _ = tap(loop, f"ifname=tn0,script={up},downscript={down}")
    state = subprocess.run(["ip", "-br", "link", "show", "tn0"], capture_output=True,
                           text=True, check=True).stdout
    after_up = log.read_text()
    client.cleanup()
    loop.close()
    return client.info_str, after_up + "|" + log.read_text(), state


@pytest.mark.netns
def test_script_and_downscript_run_with_the_interface_name(tmp_path: Path) -> None:
    info, log, state = in_netns(_scripts, str(tmp_path))
    assert info == f"ifname=tn0,script={tmp_path}/up,downscript={tmp_path}/down"
    assert log == "up tn0\n|up tn0\ndown tn0\n"
    assert "UP" in state.split()[1] or "UNKNOWN" in state, state


def _failing_script(workdir: str) -> tuple[str, str, bool]:
    failing = Path(workdir) / "fail"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o755)
    loop = MainLoop()
    messages = []
    for text in (f"ifname=tn0,script={workdir}/missing", f"ifname=tn0,script={failing}"):
        try:
            tap(loop, text)
        except UserError as err:
            messages.append(str(err))
    # the interface went away with the descriptor: the name is free again
    client, _ = tap(loop, "ifname=tn0,script=no,downscript=no")
    client.cleanup()
    loop.close()
    return messages[0], messages[1], len(messages) == 2


@pytest.mark.netns
def test_missing_script_and_failing_script_are_one_line(tmp_path: Path) -> None:
    missing, failed, both = in_netns(_failing_script, str(tmp_path))
    assert both
    assert missing == (f"could not launch network script {tmp_path}/missing: No such file "
                       "or directory (script=no / downscript=no run none)")
    assert failed == f"network script {tmp_path}/fail failed with status 768"


# --- fd= -----------------------------------------------------------------------------------

def _open_raw(ifname: str, flags: int) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, ifname.encode().ljust(16, b"\0") + flags.to_bytes(2, "little")
                + bytes(22))
    return fd


def _inherited() -> tuple[str, str, list[str]]:
    loop = MainLoop()
    fd = _open_raw("tn5", IFF_TAP | IFF_NO_PI)
    client, _ = tap(loop, f"fd={fd}")
    result = (client.info_str, client.ifname)
    client.cleanup()
    errors = []
    tun = _open_raw("tun5", IFF_TUN | IFF_NO_PI)
    vnet = _open_raw("tn6", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
    with open("/dev/null") as null:
        for text in (f"fd={tun}", f"fd={vnet}", f"fd={null.fileno()}",
                     f"fd={tun},ifname=x", "fd=999999", "fd=0x3"):
            try:
                tap(loop, text)
            except UserError as err:
                errors.append(str(err))
    loop.close()
    return *result, errors


@pytest.mark.netns
def test_fd_takes_an_open_tap_and_refuses_anything_else() -> None:
    info, ifname, errors = in_netns(_inherited)
    assert ifname == "tn5"
    assert re.fullmatch(r"fd=[0-9]+", info), info
    assert errors[0].endswith("is a tun device (tun5), not a tap: it carries IP packets, "
                              "not Ethernet frames")
    assert errors[1].endswith("(tap tn6) was opened with vnet headers; toynic takes a tap "
                              "opened with IFF_TAP|IFF_NO_PI only")
    assert errors[2].endswith("is not a tap device: Inappropriate ioctl for device")
    assert errors[3] == "ifname=, script= and downscript= are invalid with fd="
    assert errors[4] == "Can't use file descriptor 999999: Bad file descriptor"
    assert errors[5] == "Invalid file descriptor number '0x3'"


# --- errors --------------------------------------------------------------------------------

def _name_clashes() -> list[str]:
    loop = MainLoop()
    first, _ = tap(loop, "ifname=tn0,script=no,downscript=no")
    errors = []
    for text in ("ifname=tn0,script=no", "ifname=lo,script=no"):
        try:
            tap(loop, text, "t1")
        except UserError as err:
            errors.append(str(err))
    first.cleanup()
    loop.close()
    return errors


@pytest.mark.netns
def test_name_in_use_and_name_of_another_kind_of_interface() -> None:
    busy, other = in_netns(_name_clashes)
    assert busy == ("could not configure /dev/net/tun (tn0): Device or resource busy "
                    "(interface tn0 is in use by another program)")
    assert other == ("could not configure /dev/net/tun (lo): Invalid argument "
                     "(interface lo exists and is not a tap toynic can use)")


def _unprivileged() -> str:
    os.setgid(65534)
    os.setuid(65534)
    loop = MainLoop()
    try:
        tap(loop, "ifname=tn0,script=no")
    except UserError as err:
        return str(err)
    finally:
        loop.close()
    return "no error"


@pytest.mark.netns
def test_not_permitted_is_one_line() -> None:
    # in_netns forks: dropping root in the child leaves the test process as it was
    assert in_netns(_unprivileged) == ("could not open /dev/net/tun: Permission denied "
                                       "(tap needs root or CAP_NET_ADMIN)")


@pytest.mark.parametrize(("ifname", "expected"), [
    ("a" * 16, f"ifname '{'a' * 16}' is too long: an interface name has at most 15 bytes"),
    ("a/b", "ifname 'a/b' is not a valid interface name: it contains '/'"),
    ("a b", "ifname 'a b' is not a valid interface name: it contains ' '"),
    ("..", "ifname '..' is not a valid interface name"),
    ("t%s", "ifname 't%s' is not a valid interface name: '%' only as the kernel's '%d' "
            "template"),
])
def test_bad_ifname_is_refused_before_anything_is_opened(ifname: str, expected: str) -> None:
    with pytest.raises(UserError) as err:
        check_ifname(ifname)
    assert str(err.value) == expected


def test_accepted_ifnames() -> None:
    for ifname in ("a" * 15, "tap%d", "toy-0.1_x"):
        check_ifname(ifname)
