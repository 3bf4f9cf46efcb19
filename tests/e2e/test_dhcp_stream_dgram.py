"""A toynic guest gets its DHCP lease from QEMU's slirp (`-netdev user`) with QEMU in the
middle, through toynic's `-netdev stream` over a unix socket and `-netdev dgram` over unix
datagram sockets (QEMU: net/stream.c, net/dgram.c on both ends; net/slirp.c serves).

QEMU 7.2 (Debian's) runs no machine: hub 0 joins its `user` netdev to a stream server or
a dgram socket pair, and toynic's NE2000 is the only client on the other end. The `dhcp`
guest prints slirp's lease (10.0.2.15 from 10.0.2.2, QEMU's defaults), then a `ping` guest
on that address pings slirp's gateway, which slirp answers itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import GUESTS, ProcessLab, finish_ok, mac
from tests.netsupport import Proc, start_toynic

LEASE = ("dhcp: lease address=10.0.2.15 mask=255.255.255.0 router=10.0.2.2 dns=10.0.2.3 "
         "lease=86400s server=10.0.2.2")
PINGS = 3


def machine(lab: ProcessLab, program: str, append: str, netdev: str) -> Proc:
    proc = start_toynic("-kernel", str(GUESTS / f"{program}.elf"), "-append", append,
                        "-netdev", f"{netdev},id=n0",
                        "-device", f"ne2k_isa,netdev=n0,mac={mac(1)}")
    proc.name = f"toynic {program}"
    lab.procs.append(proc)
    return proc


def slirp_behind(netdev: str) -> list[str]:
    """QEMU's arguments: `-netdev user` and `netdev` (with id=q0) on hub 0."""
    return ["-netdev", "user,id=u0", "-netdev", f"{netdev},id=q0",
            "-netdev", "hubport,id=h0,hubid=0,netdev=u0",
            "-netdev", "hubport,id=h1,hubid=0,netdev=q0"]


def wiring(kind: str, tmp_path: Path) -> tuple[str, str]:
    """(QEMU's netdev, toynic's netdev) for `kind`, both over unix sockets in `tmp_path`."""
    if kind == "stream":
        path = tmp_path / "s.sock"
        return (f"stream,server=on,addr.type=unix,addr.path={path}",
                f"stream,server=off,addr.type=unix,addr.path={path}")
    qemu, toynic = tmp_path / "q.sock", tmp_path / "t.sock"
    return (f"dgram,local.type=unix,local.path={qemu},remote.type=unix,remote.path={toynic}",
            f"dgram,local.type=unix,local.path={toynic},remote.type=unix,remote.path={qemu}")


@pytest.mark.parametrize("kind", ["stream", "dgram"])
def test_a_lease_from_qemus_slirp(lab: ProcessLab, tmp_path: Path, kind: str) -> None:
    qemu_netdev, toynic_netdev = wiring(kind, tmp_path)
    qemu = lab.qemu(*slirp_behind(qemu_netdev), workdir=tmp_path)
    dhcp = finish_ok(machine(lab, "dhcp", "timeout=20 retry=500", toynic_netdev))
    assert LEASE + "\n" in dhcp, dhcp
    ping = finish_ok(machine(lab, "ping", f"ip=10.0.2.15 peer=10.0.2.2 count={PINGS} "
                             "timeout=10", toynic_netdev))
    for seq in range(1, PINGS + 1):
        assert f"from 10.0.2.2: icmp_seq={seq} " in ping, ping
    assert f"{PINGS} packets transmitted, {PINGS} received" in ping, ping
    assert qemu.alive(), qemu.describe()
