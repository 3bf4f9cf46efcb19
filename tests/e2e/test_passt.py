"""toynic behind passt, the unprivileged user-mode network of Debian's `passt` package, which
QEMU reaches through `-netdev stream,server=off,addr.type=unix,addr.path=SOCK` (QEMU:
net/stream.c as a passt client; passt plays the part of `-netdev user`).

Everything runs inside a network namespace the test creates: its only interface is one
end of a veth pair (192.0.2.10/24, default route via 192.0.2.1), which passt takes as its
template (the address, mask and gateway it hands out by DHCP); the other end sits in a
second namespace as the "router" 192.0.2.1, so nothing leaves the machine.

- the `dhcp` guest prints the lease passt offers (the template's address, passt's
  infinite lease time, the gateway as router and DHCP server);
- the `ping` guest, on the leased address, pings the gateway 5/5. This passt
  (0.0~git20230309) sends a guest's echo request out through a ping socket to the address
  asked, so the reply is the router namespace's own (it does not map the gateway to the
  host for ICMP, as it does for TCP and UDP; the namespace's `ping_group_range` must let
  passt open ping sockets, as systemd's default does on a normal host);
- a socket path with no passt behind it: one line on stderr (net/stream.c's text).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.e2e.conftest import GUESTS, ProcessLab, finish, finish_ok, mac
from tests.netsupport import Proc, in_netns, run_toynic, start_toynic, unavailable, wait_for

ADDRESS = "192.0.2.10"
GATEWAY = "192.0.2.1"
DNS = "192.0.2.53"
PINGS = 5
# passt hands out an infinite lease
LEASE = (f"dhcp: lease address={ADDRESS} mask=255.255.255.0 router={GATEWAY} dns={DNS} "
         f"lease=4294967295s server={GATEWAY}")


def ip(*args: str, netns_of: int | None = None) -> None:
    prefix = [] if netns_of is None else ["nsenter", f"--net=/proc/{netns_of}/ns/net"]
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, timeout=30)


def netns_id(pid: int | str) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def machine(lab: ProcessLab, program: str, append: str, sock: str) -> Proc:
    proc = start_toynic("-kernel", str(GUESTS / f"{program}.elf"), "-append", append,
                        "-netdev", f"stream,id=n0,server=off,addr.type=unix,addr.path={sock}",
                        "-device", f"ne2k_isa,netdev=n0,mac={mac(1)}")
    proc.name = f"toynic {program}"
    lab.procs.append(proc)
    return proc


def start_router() -> Proc:
    """A process holding a second namespace, with veth1 in it as 192.0.2.1/24; veth0 (in
    ours) is 192.0.2.10/24 with the default route via the router."""
    router = Proc(["unshare", "--net", "sleep", "600"], name="router namespace")
    mine = netns_id("self")
    wait_for(lambda: not router.alive() or netns_id(router.pid) != mine, 10,
             "the router's namespace")
    assert router.alive(), router.describe()
    ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns",
       str(router.pid))
    for args in (("link", "set", "lo", "up"), ("addr", "add", f"{GATEWAY}/24", "dev", "veth1"),
                 ("link", "set", "veth1", "up")):
        ip(*args, netns_of=router.pid)
    ip("addr", "add", f"{ADDRESS}/24", "dev", "veth0")
    ip("link", "set", "veth0", "up")
    ip("route", "add", "default", "via", GATEWAY)
    return router


def start_passt(sock: Path) -> Proc:
    """passt in the foreground on `sock`; it drops to user nobody before binding, and this
    version says "bound" even when the bind failed, so the directory is nobody's and the
    socket is waited for."""
    nobody = pwd.getpwnam("nobody")
    os.chown(sock.parent, nobody.pw_uid, nobody.pw_gid)
    passt = Proc(["passt", "--foreground", "--socket", str(sock), "--dns", DNS],
                 name="passt")
    wait_for(lambda: not passt.alive() or sock.is_socket(), 10, f"passt's socket {sock}")
    assert passt.alive(), passt.describe()
    return passt


def _lease_and_ping() -> tuple[str, str, str]:
    # no IPv6 chatter (router solicitations, passt's NDP) on interfaces made from now on
    Path("/proc/sys/net/ipv6/conf/default/disable_ipv6").write_text("1")
    Path("/proc/sys/net/ipv4/ping_group_range").write_text("0 2147483647")
    workdir = Path(tempfile.mkdtemp(prefix="toynic-passt-"))
    sock = workdir / "passt.sock"
    try:
        with ProcessLab() as lab:
            lab.procs.append(start_router())
            passt = start_passt(sock)
            lab.procs.append(passt)
            dhcp = finish_ok(machine(lab, "dhcp", "timeout=20 retry=500", str(sock)))
            ping = finish_ok(machine(lab, "ping", f"ip={ADDRESS} peer={GATEWAY} "
                                     f"count={PINGS} timeout=10", str(sock)))
            passt.stop()
            return dhcp, ping, passt.stderr
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.netns
def test_passt_gives_the_guest_a_lease_and_the_gateway_answers_its_pings() -> None:
    for tool in ("passt", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (Debian packages passt, util-linux)")
    dhcp, ping, passt_log = in_netns(_lease_and_ping, timeout=240)
    assert "Template interface: veth0 (IPv4)" in passt_log, passt_log
    assert LEASE + "\n" in dhcp, dhcp
    for seq in range(1, PINGS + 1):
        assert f"from {GATEWAY}: icmp_seq={seq} " in ping, ping
    assert f"{PINGS} packets transmitted, {PINGS} received" in ping, ping


def test_a_socket_with_no_passt_behind_it_is_one_line(tmp_path: Path) -> None:
    """As QEMU's stream client, the machine runs on without a network (here: no lease)."""
    missing = tmp_path / "passt.sock"
    proc = start_toynic("-kernel", str(GUESTS / "dhcp.elf"), "-append", "timeout=1",
                        "-netdev",
                        f"stream,id=n0,server=off,addr.type=unix,addr.path={missing}",
                        "-device", "ne2k_isa,netdev=n0")
    with proc:
        status, out = finish(proc)
        assert proc.stderr == (f"toynic: netdev n0: Failed to connect to '{missing}': "
                               "No such file or directory\n")
    assert status == 1 and "dhcp: no lease after 1.000 s" in out, out


def test_passt_socket_path_too_long_is_one_line_and_status_1() -> None:
    path = "/tmp/" + "p" * 120
    done = run_toynic("-netdev", f"stream,id=n0,server=off,addr.type=unix,addr.path={path}")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("toynic: "), done.stderr
