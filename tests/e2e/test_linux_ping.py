"""A real Linux pings `pingd`: Debian's kernel in Debian's QEMU, its own 8390 driver
(ne2k-pci) on QEMU's `ne2k_pci`, `-netdev socket,connect=` to toynic's listening socket;
busybox's ping, 60-byte and 1514-byte frames (ping -s 18, -s 1472). Linux's ARP and IP
stack and busybox decide whether a reply counts, not our code (tests/linux_guest.py)."""

from __future__ import annotations

from tests.e2e.conftest import ProcessLab, mac, wait_output
from tests.linux_guest import (
    DONE,
    GUEST_IP,
    GUEST_MAC,
    LinuxGuestUnavailable,
    PingRun,
    ping_results,
    qemu_argv,
)
from tests.netsupport import LOOPBACK, Proc, free_port, qemu_binary, unavailable

PINGD_IP = "10.0.0.1"
RUNS = [PingRun(3, 0.2, 18), PingRun(3, 0.2, 1472)]
# Booting under TCG takes 5-10 s here; a loaded CI machine gets ample slack.
LINUX_TIMEOUT_S = 240.0


def test_linux_pings_pingd(lab: ProcessLab) -> None:
    port = free_port()
    pingd = lab.machine("pingd", f"ip={PINGD_IP}", f"listen={LOOPBACK}:{port}", mac(1))
    wait_output(pingd, f"pingd: answering ARP and ping for {PINGD_IP}")
    try:
        argv = qemu_argv(qemu_binary(), f"socket,connect={LOOPBACK}:{port}", PINGD_IP, RUNS)
    except LinuxGuestUnavailable as exc:
        unavailable(f"no Linux guest: {exc}")
    linux = Proc(argv, name="qemu (Linux)")
    lab.procs.append(linux)
    linux.wait(LINUX_TIMEOUT_S)  # the guest powers off once its pings are done
    console = linux.stdout
    assert DONE in console, console[-3000:]
    results = ping_results(console)
    assert [(r.data_size, r.sent, r.received) for r in results] == [
        (run.data_size, run.count, run.count) for run in RUNS], console[-3000:]
    assert all(len(r.rtts_ms) == r.received for r in results)
    out = pingd.stdout
    assert f"pingd: ARP reply to {GUEST_MAC}" in out, out
    for run in RUNS:
        for seq in range(run.count):
            assert f"pingd: echo reply to {GUEST_IP} icmp_seq={seq} ({run.data_size} data bytes)" \
                in out, out
