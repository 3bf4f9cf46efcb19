"""Lab — toynic's counterpart of QEMU's libqtest process handling (qtest_init, qtest_quit)
plus the socket helpers of tests/qtest/netdev-socket.c: machines, netdevs and in-process
frame peers of one test on one MainLoop (docs/testing-kit.md explains it step by step).

- `Lab`: each machine's console captured, everything closed on exit (`with Lab() as lab:`);
- `LabMachine`: one machine of a lab, its console output and its NICs;
- `FramePeer`: the test's own NetClient, plugged into a NIC or a netdev by name: it
  records every frame it receives and sends frames with `send(frame)`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.ne2000 import DEFAULT_MAC
from emu.board.loader import GUEST_DIR
from emu.board.machine import Machine
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.monitor.hmp import Monitor
from emu.testing.clients import RecordingClient
from netdev.client import NetClient, connect_peers
from netdev.net import Net

GUESTS = GUEST_DIR
LAB_MAC_BASE = DEFAULT_MAC


class FramePeer(RecordingClient):
    """The RecordingClient a Lab plugs in by name: `received` holds every frame delivered
    to it, in order; `send(frame)` sends one; `accepting`/`resume()` model a slow reader."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "peer")
        self.info_str = "test peer"


@dataclass
class LabMachine:
    """One machine of a Lab with its captured console and error output."""

    machine: Machine
    console: io.BytesIO
    errors: io.StringIO
    boards: list[Any] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.console.getvalue().decode(errors="replace")

    @property
    def exit_code(self) -> int | None:
        return self.machine.exit_code

    @property
    def nic(self) -> Any:
        """The first NE2000 board (its `.chip`, `.nc`, `.stats`, `.mac`)."""
        return self.boards[0]


class Lab:
    """Machines, netdevs and peers of one test on one MainLoop; `close()` releases all."""

    def __init__(self) -> None:
        self.loop = MainLoop()
        self.net = Net(self.loop)
        self.machines: list[LabMachine] = []
        self.peers: dict[str, FramePeer] = {}
        self._nics = 0
        self._closed = False

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def netdev(self, text: str) -> NetClient:
        """A `-netdev` as on the command line: `socket,id=n0,listen=127.0.0.1:5555`."""
        return self.net.add_netdev(parse_opts(text, "type"))

    def peer(self, name: str, netdev: str | None = None) -> FramePeer:
        """A FramePeer; with `netdev`, joined to that netdev now, else named later by a
        device's `netdev=NAME`."""
        peer = FramePeer(name)
        if netdev is not None:
            connect_peers(peer, self.net.find_netdev(netdev))
        self.peers[name] = peer
        self.net.add_client(peer)
        return peer

    def machine(self, kernel: str | Path, append: str = "", devices: Sequence[str] = (),
                *, ram_size: int = 16 << 20, icount_shift: int = 0,
                icount_sleep: bool = True) -> LabMachine:
        """A machine running `kernel` (a path, or a name in emu/guests such as "echo").

        `devices` are `-device` strings; a NIC without `id=` is named `ne2k_isa.N` and
        one without `mac=` gets 52:54:00:12:34:56 + N (N counts the lab's NICs), so
        machines never clash. icount_sleep is on, as on the command line: an idle guest
        waits in real time for its next timer, so frames the test sends while the guest
        waits arrive "in time". With icount_sleep=False idle time jumps straight to the
        next timer (deterministic and fast, but a guest waiting with a timeout gives up
        at once unless its input is already there)."""
        path = Path(kernel)
        if not path.exists() and (GUESTS / f"{kernel}.elf").exists():
            path = GUESTS / f"{kernel}.elf"
        console, errors = io.BytesIO(), io.StringIO()
        machine = Machine(self.loop, ram_size=ram_size, icount_shift=icount_shift,
                          icount_sleep=icount_sleep, console=console, stderr=errors)
        machine.load_kernel(str(path), append)
        lab_machine = LabMachine(machine, console, errors)
        for text in devices:
            lab_machine.boards.append(self._add_device(machine, text))
        self.machines.append(lab_machine)
        machine.start()
        return lab_machine

    def _add_device(self, machine: Machine, text: str) -> Any:
        opts = parse_opts(text, "driver")
        index = self._nics
        self._nics += 1
        opts.values.setdefault("id", f"ne2k_isa.{index}")
        if "mac" not in opts.values:
            mac = (int.from_bytes(LAB_MAC_BASE, "big") + index).to_bytes(6, "big")
            opts.values["mac"] = ":".join(f"{b:02x}" for b in mac)
        peer = self.peers.get(opts.values.get("netdev", ""))
        if peer is not None:
            del opts.values["netdev"]
        board = machine.add_device(opts, self.net)
        if peer is not None:
            connect_peers(board.nc, peer)
        return board

    def monitor(self, machine: LabMachine | None = None) -> Monitor:
        """The HMP monitor over this lab's network (and `machine`, if given)."""
        return Monitor(self.net, machine.machine if machine is not None else None)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Run every machine and socket until `predicate()` holds (True) or `timeout` real
        seconds pass (False). An exception inside the emulator re-raises here."""
        reached = self.loop.run_until(predicate, timeout)
        for lab_machine in self.machines:
            lab_machine.machine.run_until(lambda: True, 0)
        return reached

    def wait_output(self, machine: LabMachine, text: str, timeout: float = 30.0) -> bool:
        return self.run_until(lambda: text in machine.output, timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.net.close()
        self.loop.close()
