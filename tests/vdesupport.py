"""A real `vde_switch` (Debian's vde2) for the tests of `-netdev vde`, and the `vde_plug`
cable between two switches (`dpipe vde_plug SW1 = vde_plug SW2`).

Every process is a `tests.netsupport.Proc`, stopped by its PID. vde_switch reads its
console from stdin and exits at end of file, so its stdin is a pipe the test holds open.
Switch directories live in a short temporary directory: a unix socket path has at most
107 bytes.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.netsupport import Proc, unavailable, wait_for

START_TIMEOUT = 15.0


def vde_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (Debian package vde2)")
    return path


class VdeSwitch:
    """`vde_switch -s DIR` running until `close()`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.proc = Proc([vde_tool("vde_switch"), "-s", str(directory)], name="vde_switch",
                         stdin=subprocess.PIPE)
        with self.proc.closed_on_failure():
            wait_for(self._ready, START_TIMEOUT, f"vde_switch on {directory}")

    def _ready(self) -> bool:
        if not self.proc.alive():
            raise RuntimeError(f"vde_switch exited: {self.proc.describe()}")
        return (self.directory / "ctl").exists()

    def close(self) -> None:
        stdin = self.proc.popen.stdin
        self.proc.close()
        if stdin is not None:
            stdin.close()


class VdeCable:
    """`dpipe vde_plug SW1 = vde_plug SW2`: two switches joined as by a cable over ssh."""

    def __init__(self, one: VdeSwitch, other: VdeSwitch) -> None:
        plug = vde_tool("vde_plug")
        self.proc = Proc([vde_tool("dpipe"), plug, str(one.directory), "=", plug,
                          str(other.directory)], name="dpipe vde_plug")
        self._ports = (one.directory, other.directory)
        with self.proc.closed_on_failure():
            wait_for(self._plugged, START_TIMEOUT, "both vde_plug ends on their switches")

    def _plugged(self) -> bool:
        if not self.proc.alive():
            raise RuntimeError(f"dpipe exited: {self.proc.describe()}")
        # Each plugged client has a datagram socket `NNN.FD` in the switch's directory.
        return all(any(p.name[:3].isdigit() for p in d.iterdir()) for d in self._ports)

    def close(self) -> None:
        self.proc.close()


@contextlib.contextmanager
def vde_lab(switches: int = 1, cable: bool = False) -> Iterator[list[VdeSwitch]]:
    """`switches` running switches (directories sw0, sw1, ...), optionally the first two
    joined by a cable; all stopped afterwards."""
    started: list[VdeSwitch | VdeCable] = []
    with tempfile.TemporaryDirectory(prefix="vde", dir="/tmp") as top:
        try:
            found: list[VdeSwitch] = []
            for n in range(switches):
                found.append(VdeSwitch(Path(top) / f"sw{n}"))
                started.append(found[-1])
            if cable:
                started.append(VdeCable(found[0], found[1]))
            yield found
        finally:
            for thing in reversed(started):
                thing.close()
