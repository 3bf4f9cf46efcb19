"""Lab — toynic's counterpart of QEMU's libqtest process handling (qtest_init, qtest_quit)
plus the socket helpers of tests/qtest/netdev-socket.c: machines, netdevs and in-process
frame peers of one test on one MainLoop (docs/testing-kit.md explains it step by step).

- `Lab`: each machine's console captured, everything closed on exit (`with Lab() as lab:`);
- `LabMachine`: one machine of a lab, its console output and its NICs;
- `FramePeer`: the test's own NetClient, plugged into a NIC or a netdev by name: it
  records every frame it receives (and when) and sends frames with `send(frame)`, now or
  at a later instant (`at_ns=`).

A lab keeps the last frames of each link (emu.testing.report.LinkLog); when an exception
leaves `with Lab(...)` (or `with lab.example():`) it gets a note naming the machines with
their last console lines and the last frames of each link, and the artifacts — a pcap
per link, each console — are written to a folder the note names.

`Lab(deterministic=True)` runs every machine and peer on one global virtual time
(emu.board.scheduler.QuantumScheduler): the test drives time with `run_for` and
`run_until`, whose timeouts are virtual, and the run is a function of its inputs alone.
Host sockets, taps and VDE have no place in it and are refused.
"""

from __future__ import annotations

import io
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from devices.ne2000 import DEFAULT_MAC
from emu.board.loader import GUEST_DIR
from emu.board.machine import Machine
from emu.board.scheduler import DEFAULT_QUANTUM_NS, QuantumScheduler
from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.core.timeline import Timeline
from emu.core.trace import Trace
from emu.monitor.hmp import Monitor
from emu.testing.clients import RecordingClient
from emu.testing.links import Direction, FrameCallback, FrameWatch, Middlebox, splice
from emu.testing.report import (
    DEFAULT_RECORD_FRAMES,
    LinkLog,
    failure_dir,
    render_report,
    safe_name,
    write_link_pcap,
)
from netdev.client import NetClient, connect_peers
from netdev.net import Net

GUESTS = GUEST_DIR
LAB_MAC_BASE = DEFAULT_MAC
# Real seconds a deterministic lab may spend on one run_for/run_until before it raises.
DEFAULT_WALL_CAP = 300.0
# What a deterministic lab accepts from `netdev`: nothing that talks to the host.
DETERMINISTIC_NETDEVS = frozenset({"hubport"})


class FramePeer(RecordingClient):
    """The RecordingClient a Lab plugs in by name: `received` holds every frame delivered
    to it, in order, and `received_at` the lab time (ns) each arrived; `send(frame)` sends
    one; `accepting`/`resume()` model a slow reader."""

    def __init__(self, name: str, timeline: Timeline) -> None:
        super().__init__(name, "peer")
        self.info_str = "test peer"
        self.timeline = timeline
        self.received_at: list[int] = []

    def receive(self, frame: bytes) -> int:
        taken = super().receive(frame)
        if taken > 0:
            self.received_at.append(self.timeline.now_ns())
        return taken

    def send(self, frame: bytes, at_ns: int | None = None) -> int:
        """Send `frame` now, or at lab time `at_ns` (virtual ns in a deterministic lab,
        the host's monotonic ns otherwise); a scheduled frame counts as taken."""
        if at_ns is None:
            return super().send(frame)
        data = bytes(frame)
        self.timeline.call_at(at_ns, lambda: RecordingClient.send(self, data))
        return len(data) or 1

    def __repr__(self) -> str:
        return f"<peer {self.name}: {len(self.received)} frame(s) received>"


@dataclass(repr=False)
class LabMachine:
    """One machine of a Lab with its captured console and error output."""

    machine: Machine
    console: io.BytesIO
    errors: io.StringIO
    boards: list[Any] = field(default_factory=list)
    name: str = ""
    kernel: str = ""

    def __repr__(self) -> str:
        return f"<machine {self.name}: {self.kernel}, {self.state}>"

    @property
    def state(self) -> str:
        """`running`, or `exited N`."""
        return "running" if self.exit_code is None else f"exited {self.exit_code}"

    @property
    def output(self) -> str:
        return self.console.getvalue().decode(errors="replace")

    @property
    def error_output(self) -> str:
        """What the machine reported on its stderr (guest faults, warnings)."""
        return self.errors.getvalue()

    @property
    def exit_code(self) -> int | None:
        return self.machine.exit_code

    @property
    def nic(self) -> Any:
        """The first NE2000 board (its `.chip`, `.nc`, `.stats`, `.mac`)."""
        return self.boards[0]


class Lab:
    """Machines, netdevs and peers of one test on one MainLoop; `close()` releases all.

    deterministic=True: one global virtual time for the whole lab, advanced in quanta of
    `quantum_ns` (a frame crosses the network at the end of the quantum it was sent in,
    or `link_delay_ns` after it was sent if that is later); `wall_cap` real seconds bound
    each run_for/run_until (TimeoutError past it).

    Each link keeps its last `record_frames` frames for the failure report and its pcap
    (0: none); `artifacts` is where a failure's files go (default: `failure_dir()`,
    toynic-failures/TEST-ID in the temporary directory or under $TOYNIC_FAILURES)."""

    def __init__(self, deterministic: bool = False, quantum_ns: int = DEFAULT_QUANTUM_NS,
                 *, link_delay_ns: int = 0, wall_cap: float = DEFAULT_WALL_CAP,
                 record_frames: int = DEFAULT_RECORD_FRAMES,
                 artifacts: str | Path | None = None) -> None:
        self.loop = MainLoop()
        self.net = Net(self.loop)
        self.deterministic = deterministic
        self.wall_cap = wall_cap
        self.scheduler: QuantumScheduler | None = None
        if deterministic:
            self.scheduler = QuantumScheduler(quantum_ns, link_delay_ns)
            self.net.timeline = self.scheduler.timeline
            self.net.set_clock(self.scheduler.now_ns)
        self.machines: list[LabMachine] = []
        self.peers: dict[str, FramePeer] = {}
        self._nics = 0
        self._closed = False
        self._trace: Trace | None = None
        self._traces: list[Trace] = []
        self._trace_file: TextIO | None = None
        self._trace_target: TextIO | None = None
        self.record_frames = record_frames
        self.artifacts = Path(artifacts) if artifacts is not None else None
        self._logs: list[LinkLog] = []
        self._marks: dict[LinkLog, int] = {}
        # pcap stamps: virtual time from 0 (1970) in a deterministic lab, else wall time.
        self._wall_origin = (0, 0) if deterministic else (time.time_ns() // 10**9,
                                                          self.now_ns)

    @property
    def now_ns(self) -> int:
        """The lab's time: global virtual ns (deterministic), else host monotonic ns."""
        return self.net.timeline.now_ns()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 _tb: object) -> None:
        try:
            if isinstance(error, Exception):
                self._report_failure(error)
        finally:
            self.close()

    def netdev(self, text: str) -> NetClient:
        """A `-netdev` as on the command line: `socket,id=n0,listen=127.0.0.1:5555`.
        A deterministic lab takes only hubports."""
        opts = parse_opts(text, "type")
        kind = opts.get("type")
        if self.deterministic and kind not in DETERMINISTIC_NETDEVS:
            raise UserError(f"-netdev {kind}: a deterministic lab has no host I/O; connect "
                            "its machines with hubports and lab peers")
        client = self.net.add_netdev(opts)
        if self._trace is not None:
            self._trace.attach(client)
        self._log_link(client)
        return client

    def _log_link(self, client: NetClient) -> None:
        if self.record_frames > 0:
            self._logs.append(LinkLog(client, self.net.timeline, self.record_frames))

    def object(self, text: str) -> None:
        """An `-object` as on the command line: `filter-netem,id=f0,netdev=n0,loss=10%`
        or `filter-dump,id=d0,netdev=n0,file=x.pcap`."""
        self.net.add_object(parse_opts(text, "qom-type"))

    def peer(self, name: str, netdev: str | None = None) -> FramePeer:
        """A FramePeer; with `netdev`, joined to that netdev now, else named later by a
        device's `netdev=NAME`."""
        peer = FramePeer(name, self.net.timeline)
        if netdev is not None:
            connect_peers(peer, self.net.find_netdev(netdev))
        else:
            # Joined to a netdev, the netdev's log has this link already.
            self._log_link(peer)
        self.peers[name] = peer
        self.net.add_client(peer)
        if self._trace is not None:
            self._trace.attach(peer)
        return peer

    def machine(self, kernel: str | Path, append: str = "", devices: Sequence[str] = (),
                *, ram_size: int = 16 << 20, icount_shift: int = 0,
                icount_sleep: bool = True, name: str | None = None) -> LabMachine:
        """A machine running `kernel` (a path, or a name in emu/guests such as "echo").

        `devices` are `-device` strings; a NIC without `id=` is named `ne2k_isa.N` and
        one without `mac=` gets 52:54:00:12:34:56 + N (N counts the lab's NICs), so
        machines never clash. icount_sleep is on, as on the command line: an idle guest
        waits in real time for its next timer, so frames the test sends while the guest
        waits arrive "in time". With icount_sleep=False idle time jumps straight to the
        next timer (deterministic and fast, but a guest waiting with a timeout gives up
        at once unless its input is already there). A deterministic lab ignores
        icount_sleep: its scheduler drives the machine. `name` (default mN, N counting the
        lab's machines) labels the machine's trace lines."""
        if self.scheduler is None and not all(
                m.machine.icount_sleep and icount_sleep for m in self.machines):
            # Each machine would jump its own clock to its next timer, racing ahead of
            # the others: a guest waiting for a reply gives up at once.
            warnings.warn("a free-running Lab with several machines and icount_sleep=False "
                          "gives wrong protocol results (guests time out at once); use "
                          "Lab(deterministic=True)", RuntimeWarning, stacklevel=2)
        path = Path(kernel)
        if not path.exists() and (GUESTS / f"{kernel}.elf").exists():
            path = GUESTS / f"{kernel}.elf"
        console, errors = io.BytesIO(), io.StringIO()
        machine = Machine(self.loop, ram_size=ram_size, icount_shift=icount_shift,
                          icount_sleep=icount_sleep, console=console, stderr=errors)
        machine.load_kernel(str(path), append)
        lab_machine = LabMachine(machine, console, errors, kernel=path.name,
                                 name=name if name is not None else f"m{len(self.machines)}")
        for text in devices:
            lab_machine.boards.append(self._add_device(machine, text))
        self.machines.append(lab_machine)
        if self.scheduler is not None:
            self.scheduler.add_machine(machine)
            for board in lab_machine.boards:
                self.scheduler.hold_nic(machine, board)
        else:
            machine.start()
        if self._trace is not None:
            self._trace_machine(lab_machine, self._trace)
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

    def on_frame(self, name: str, callback: FrameCallback) -> FrameWatch:
        """Call `callback(frame, direction)` for each frame crossing the link of the client
        called `name` (a netdev id, a NIC id, a peer's name) at the moment it crosses,
        before the next one ("tx": sent by that client, "rx": sent to it); what the
        callback does happens exactly between two frames. `.close()` stops it."""
        return FrameWatch(self._client(name), callback)

    def run_until_frame(self, name: str,
                        match: Callable[[bytes, Direction], bool] | None = None,
                        timeout: float = 30.0) -> bytes | None:
        """Run until a frame (one `match(frame, direction)` accepts) crosses the link of
        `name`; that frame, or None after `timeout` (as run_until's). The lab stops at its
        next stopping point: in a deterministic lab the end of the round the frame crossed
        in (other frames of that round may follow it), in a free-running one the end of
        the CPU slice. To act exactly after a frame, use on_frame."""
        seen: list[bytes] = []

        def note(frame: bytes, direction: Direction) -> None:
            if not seen and (match is None or match(frame, direction)):
                seen.append(frame)

        watch = self.on_frame(name, note)
        try:
            self.run_until(lambda: bool(seen), timeout)
        finally:
            watch.close()
        return seen[0] if seen else None

    def splice(self, name: str, box: Middlebox, to: str | None = None) -> Middlebox:
        """Put your own `Middlebox` between the client called `name` (a netdev id or a
        peer's name) and its peer (e.g. the NIC of a machine added with `netdev=name`), or
        with `to` between two free netdevs; see emu.testing.links. Frames then pass
        through `box.receive`."""
        other = self._client(to) if to is not None else None
        return splice(self.net, self._client(name), box, self.net.timeline, other)

    def _client(self, name: str) -> NetClient:
        client = next((c for c in self.net.clients if c.name == name), None)
        if client is None:
            raise UserError(f"Device '{name}' not found")
        return client

    def monitor(self, machine: LabMachine | None = None) -> Monitor:
        """The HMP monitor over this lab's network (and `machine`, if given)."""
        return Monitor(self.net, machine.machine if machine is not None else None)

    def trace(self, patterns: str | Sequence[str], target: str | TextIO | None = None) -> Trace:
        """Trace the lab's machines, netdevs and peers (present and later) with QEMU
        `-trace` patterns, into `target` (a path, a text stream; default stderr). In a
        deterministic lab every line starts `t=NS machine=NAME` (virtual ns; NAME is `net`
        for hubs and peers), so the lines of all machines merge into one ordered story."""
        if self._trace is not None:
            raise UserError("this lab is already traced")
        if isinstance(target, str):
            target = self._trace_file = open(target, "w", encoding="utf-8")  # noqa: SIM115
        self._trace_target = target
        trace = self._trace = self._new_trace(patterns, target)
        if self.scheduler is not None:
            trace.set_stamp(lambda: f"t={self.now_ns} machine=net")
        trace.attach(self.net)
        for lab_machine in self.machines:
            self._trace_machine(lab_machine, trace)
        return trace

    def _new_trace(self, patterns: str | Sequence[str], target: TextIO | None) -> Trace:
        trace = Trace()
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            warning = trace.apply(pattern)
            if warning is not None:
                raise UserError(f"-trace {pattern}: {warning}")
        trace.open_log(target)
        self._traces.append(trace)
        return trace

    def _trace_machine(self, lab_machine: LabMachine, net_trace: Trace) -> None:
        trace = net_trace
        if self.scheduler is not None:
            # A trace of its own: its lines say which machine and its clock's time.
            trace = self._new_trace(net_trace.enabled(), self._trace_target)
            clock, name = lab_machine.machine.clock, lab_machine.name
            trace.set_stamp(lambda: f"t={clock.now()} machine={name}")
        lab_machine.machine.set_trace(trace)
        for board in lab_machine.boards:
            trace.attach(board.nc)

    def run_for(self, seconds: float) -> None:
        """Let `seconds` pass: virtual seconds in a deterministic lab, real ones otherwise."""
        if self.scheduler is None:
            self.run_until(lambda: False, seconds)
            return
        self.scheduler.run(self.now_ns + round(seconds * 1e9), None, self.wall_cap)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Run every machine and socket until `predicate()` holds (True) or `timeout`
        seconds pass (False): virtual seconds in a deterministic lab (checked at each
        quantum's end; past `wall_cap` real seconds TimeoutError), real ones otherwise.
        An exception inside the emulator re-raises here."""
        if self.scheduler is not None:
            return self.scheduler.run(self.now_ns + round(timeout * 1e9), predicate,
                                      self.wall_cap)
        reached = self.loop.run_until(predicate, timeout)
        for lab_machine in self.machines:
            lab_machine.machine.run_until(lambda: True, 0)
        return reached

    def wait_output(self, machine: LabMachine, text: str, timeout: float = 30.0) -> bool:
        return self.run_until(lambda: text in machine.output, timeout)

    def drain(self, quiet: float = 0.01, timeout: float = 5.0) -> bool:
        """Run until nothing is in flight: no frame queued at any client's door, none
        scheduled for later (a delayed or `at_ns` frame; deterministic lab), and no frame
        crossed a link for `quiet` seconds (the guests' answers are out). False if that
        does not happen within `timeout` (a receiver that stopped reading keeps its
        queue). Seconds are virtual in a deterministic lab."""
        quiet_ns = round(quiet * 1e9)
        timeline = self.scheduler.timeline if self.scheduler is not None else None

        def settled() -> bool:
            last = max((log.frames[-1].ns for log in self._logs if log.frames), default=None)
            return ((last is None or self.now_ns - last >= quiet_ns)
                    and not any(len(c.incoming_queue) for c in self.net.clients)
                    and (timeline is None or timeline.next_at() is None))

        return self.run_until(settled, timeout)

    @contextmanager
    def example(self) -> Iterator[Lab]:
        """One example of a property on a lab that outlives it (a machine booted once
        per module): the report and pcaps of an exception leaving the block show only
        the frames that crossed inside it."""
        self._marks = {log: log.count for log in self._logs}
        try:
            yield self
        except Exception as error:
            self._report_failure(error)
            raise

    def failure_report(self, artifacts: Path | None = None) -> str:
        """The lab as a reader wants it after a failure: each machine (name, kernel, state,
        last console lines) and each link (frames, the last ones in a line each)."""
        labels = {board.nc.name: m.name for m in self.machines for board in m.boards}
        links = [(log, self._marks.get(log, 0)) for log in self._logs]
        return render_report(self.machines, links, self.now_ns, self.deterministic, labels,
                             artifacts)

    def write_artifacts(self, directory: str | Path) -> Path:
        """Write into `directory` (made if missing): NAME.pcap for each link (its frames
        since the lab or `example()` began, at most `record_frames`; named after the
        link's netdev or peer), NAME.console.txt for each machine, report.txt, and a
        copy of the lab's trace file if `trace` wrote to one. Returns the directory."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        start_sec, origin_ns = self._wall_origin
        for log in self._logs:
            write_link_pcap(path / f"{safe_name(log.client.name)}.pcap",
                            log.since(self._marks.get(log, 0)), start_sec, origin_ns)
        for lab_machine in self.machines:
            (path / f"{safe_name(lab_machine.name)}.console.txt").write_text(
                lab_machine.output + lab_machine.error_output, encoding="utf-8")
        if self._trace_file is not None:
            self._trace_file.flush()
            shutil.copyfile(self._trace_file.name, path / Path(self._trace_file.name).name)
        (path / "report.txt").write_text(self.failure_report() + "\n", encoding="utf-8")
        return path

    def _report_failure(self, error: Exception) -> None:
        """Attach the report to `error` (PEP 678 note) and write the artifacts; a
        failure doing so is noted too, never raised over the test's own error."""
        try:
            directory = self.artifacts or failure_dir()
            if self.artifacts is None:
                # Ours alone: the previous failing example's files go.
                shutil.rmtree(directory, ignore_errors=True)
            error.add_note(self.failure_report(self.write_artifacts(directory)))
        except Exception as broken:  # the test's own error matters more: note, go on
            error.add_note(f"toynic: no failure report: {type(broken).__name__}: {broken}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for trace in self._traces:
            trace.close()
        if self._trace_file is not None:
            self._trace_file.close()
        self.net.close()
        self.loop.close()

