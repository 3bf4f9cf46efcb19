"""Monitor — the human monitor (HMP) of QEMU's monitor/hmp.c, monitor/hmp-cmds.c and
net/net.c (hmp_info_network, qmp_set_link), served on a QEMU-style chardev.

Two halves:

- `Monitor` executes one command line and returns its output text: `info network`,
  `info registers`, `info ne2000`, `info status`, `set_link NAME on|off`, `x/FMT ADDR`,
  `xp/FMT ADDR`, `help`, `quit`. Spelling and output follow QEMU 7.2's HMP; every bad
  command gets one line of error. Without a machine (a frame relay) only the network
  commands, `help` and `quit` exist.
- `MonitorServer` serves it on `-monitor stdio`, `unix:PATH,server,nowait` or
  `tcp:HOST:PORT,server,nowait` (QEMU's chardev spelling): non-blocking fds on the
  MainLoop, one socket client at a time, the next one after it leaves, as QEMU's socket
  chardev. Output lines end in CRLF and the prompt is `(toynic) `. Output goes through an
  `emu.core.loop.FdWriter` (on stdio, the console's own, so the two keep their order) and
  commands are not read while 256 KiB of it wait. A stdin that epoll refuses (a regular
  file, /dev/null) is read to its end, then treated as closed; a stdin closed before
  toynic started is no input. A listening socket whose accept() lacks descriptors is
  retried on a timer (`emu.core.loop.Acceptor`).

Deliberate differences from QEMU: `x`/`xp` read RAM only (QEMU would also read device
registers, with their side effects) and dump at most MAX_DUMP_UNITS units per command.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emu.board.layout import RAM_BASE
from emu.board.machine import Machine
from emu.core.errors import UserError
from emu.core.loop import Acceptor, FdWriter, MainLoop, fd_pollable
from emu.core.opts import parse_opts
from emu.core.trace import EVENT_NAMES, Trace, match_events
from emu.cpu import csr
from netdev.client import NetClient
from netdev.net import Net
from netdev.sockaddr import parse_host_port

PROMPT = "(toynic) "
BANNER = "toynic monitor - type 'help' for more information"
MAX_DUMP_UNITS = 4096
MAX_LINE = 4096
# Stop reading a client's commands while this much of their output is still unsent.
OUTPUT_HIGH_WATER = 256 * 1024
_STDIN_FD = 0

ABI_NAMES = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
    "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
    "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
)
# The machine-mode CSRs a reader needs to follow traps and interrupts, in QEMU's order.
DUMPED_CSRS = (
    ("mhartid", 0xF14), ("mstatus", 0x300), ("mip", 0x344), ("mie", 0x304),
    ("mtvec", 0x305), ("mepc", 0x341), ("mcause", 0x342), ("mtval", 0x343),
    ("mscratch", 0x340), ("minstret", 0xB02),
)

ISR_BITS = ("PRX", "PTX", "RXE", "TXE", "OVW", "CNT", "RDC", "RST")
RCR_BITS = ("SEP", "AR", "AB", "AM", "PRO", "MON")
CR_DMA = ("RD=0", "RREAD", "RWRITE", "SEND", "NODMA", "NODMA", "NODMA", "NODMA")


class CommandError(Exception):
    """A bad command line; str(self) is the one line the user sees."""


@dataclass(frozen=True)
class Command:
    names: tuple[str, ...]
    args: str
    help: str
    handler: Callable[[list[str]], str]
    needs_machine: bool = False


class Monitor:
    """HMP commands over one process's `Net` and, when there is one, its `Machine`."""

    def __init__(self, net: Net, machine: Machine | None = None,
                 on_quit: Callable[[], None] | None = None, trace: Trace | None = None) -> None:
        self.net = net
        self.machine = machine
        self.on_quit = on_quit
        self.trace = trace
        self.quit_requested = False
        self._commands = [
            Command(("help", "?"), "[cmd]", "show the help", self._help),
            Command(("info",), "[subcommand]",
                    "show various information about the system state", self._info),
            Command(("quit", "q"), "", "quit the emulator", self._quit),
            Command(("set_link",), "name on|off",
                    "change the link status of a network adapter", self._set_link),
            Command(("trace-event",), "name on|off",
                    "changes status of a specific trace event (name may be a glob)",
                    self._trace_event),
            Command(("x",), "/fmt addr", "virtual memory dump starting at 'addr'",
                    lambda args: self._dump("x", args), needs_machine=True),
            Command(("xp",), "/fmt addr", "physical memory dump starting at 'addr'",
                    lambda args: self._dump("xp", args), needs_machine=True),
        ]
        self._infos = [
            Command(("ne2000",), "", "show every NE2000 register by page and its ring state",
                    self._info_ne2000, needs_machine=True),
            Command(("network",), "", "show the network state", self._info_network),
            Command(("registers",), "", "show the cpu registers", self._info_registers,
                    needs_machine=True),
            Command(("status",), "", "show the current VM status (running|paused)",
                    self._info_status),
            Command(("trace-events",), "[name]", "show available trace-events & their state",
                    self._info_trace_events),
        ]

    # -- dispatch ------------------------------------------------------------------------

    def execute(self, line: str) -> str:
        """Run one command line; returns its output ('' or lines ending in newline)."""
        words = line.split()
        if not words:
            return ""
        name, slash, fmt = words[0].partition("/")
        args = ([slash + fmt] if slash else []) + words[1:]
        command = self._find(self._commands, name)
        if command is None:
            return f"unknown command: '{words[0]}'\n"
        try:
            return command.handler(args)
        except CommandError as err:
            return f"{err}\n"

    def _find(self, table: list[Command], name: str) -> Command | None:
        for command in table:
            if name in command.names and (self.machine is not None or not command.needs_machine):
                return command
        return None

    def _available(self, table: list[Command]) -> list[Command]:
        return [c for c in table if self.machine is not None or not c.needs_machine]

    @staticmethod
    def _usage(prefix: str, command: Command) -> str:
        return f"{prefix}{'|'.join(command.names)} {command.args} -- {command.help}\n"

    def _help(self, args: list[str]) -> str:
        if len(args) > 1:
            raise CommandError("help: extraneous characters at the end of line")
        if args:
            if args[0] == "info":
                return "".join(self._usage("info ", c) for c in self._available(self._infos))
            command = self._find(self._commands, args[0])
            if command is None:
                raise CommandError(f"unknown command: '{args[0]}'")
            return self._usage("", command)
        return "".join(self._usage("", c) for c in self._available(self._commands))

    def _info(self, args: list[str]) -> str:
        if not args:
            return self._help(["info"])
        if len(args) > (3 if args[0] == "trace-events" else 2) - 1:
            raise CommandError(f"info {args[0]}: extraneous characters at the end of line")
        command = self._find(self._infos, args[0])
        if command is None:
            raise CommandError(f"unknown command: 'info {args[0]}'")
        return command.handler(args[1:])

    def _quit(self, args: list[str]) -> str:
        if args:
            raise CommandError("quit: extraneous characters at the end of line")
        self.quit_requested = True
        if self.on_quit is not None:
            self.on_quit()
        return ""

    # -- network -------------------------------------------------------------------------

    def _info_network(self, _args: list[str]) -> str:
        text = self.net.info_network()
        return text + "\n" if text else ""

    def _set_link(self, args: list[str]) -> str:
        if not args:
            raise CommandError("set_link: string expected")
        if len(args) == 1 or args[1] not in ("on", "off"):
            raise CommandError("Expected 'on' or 'off' (try \"help set_link\")")
        if len(args) > 2:
            raise CommandError("set_link: extraneous characters at the end of line")
        set_link(self.net, args[0], args[1] == "on")
        return ""

    def _info_status(self, _args: list[str]) -> str:
        machine = self.machine
        if machine is not None and machine.exit_code is not None:
            return "VM status: shutdown\n"
        return "VM status: running\n"

    # -- tracing -------------------------------------------------------------------------

    def _tracer(self) -> Trace:
        if self.trace is None:
            raise CommandError("tracing is not available in this process")
        return self.trace

    def _trace_event(self, args: list[str]) -> str:
        if len(args) != 2 or args[1] not in ("on", "off"):
            raise CommandError("trace-event: expected 'name on|off'")
        if not self._tracer().set_events(args[0], args[1] == "on"):
            raise CommandError(f"could not find event '{args[0]}'")
        return ""

    def _info_trace_events(self, args: list[str]) -> str:
        trace = self._tracer()
        names = match_events(args[0]) if args else list(EVENT_NAMES)
        return "".join(f"{name} : state {int(bool(getattr(trace, name)))}\n" for name in names)

    # -- CPU and memory ------------------------------------------------------------------

    def _cpu(self) -> Any:
        assert self.machine is not None
        return self.machine.cpu

    def _info_registers(self, _args: list[str]) -> str:
        cpu = self._cpu()
        lines = ["CPU#0", f" {'pc':<8} {cpu.pc & 0xFFFFFFFF:08x}"]
        for name, number in DUMPED_CSRS:
            value = csr.read(cpu, number)
            lines.append(f" {name:<8} {(value or 0) & 0xFFFFFFFF:08x}")
        for row in range(0, 32, 4):
            lines.append("".join(
                f" {f'x{i}/{ABI_NAMES[i]}':<8} {cpu.x[i] & 0xFFFFFFFF:08x}"
                for i in range(row, row + 4)))
        return "\n".join(lines) + "\n"

    def _dump(self, name: str, args: list[str]) -> str:
        fmt = args.pop(0)[1:] if args and args[0].startswith("/") else ""
        count, kind, size = parse_format(name, fmt)
        if not args:
            raise CommandError("unexpected end of expression (try \"help x\")")
        addr = self._expression(" ".join(args)) & 0xFFFFFFFF
        if count > MAX_DUMP_UNITS:
            raise CommandError(f"{name}: at most {MAX_DUMP_UNITS} units per dump")
        assert self.machine is not None
        ram = self.machine.ram.data
        width = 16 if name == "xp" else 8
        line_bytes = 8 if size == 1 else 16
        lines = []
        remaining = count * size
        while remaining > 0:
            length = min(remaining, line_bytes)
            offset = addr - RAM_BASE
            if not 0 <= offset <= len(ram) - length:
                lines.append(f"{addr:0{width}x}: Cannot access memory")
                break
            units = [int.from_bytes(ram[offset + i:offset + i + size], "little")
                     for i in range(0, length, size)]
            lines.append(f"{addr:0{width}x}:" + "".join(
                " " + format_unit(value, kind, size) for value in units))
            addr = (addr + length) & 0xFFFFFFFF
            remaining -= length
        return "".join(line + "\n" for line in lines)

    def _expression(self, text: str) -> int:
        """QEMU's monitor expressions, cut down: numbers and $registers joined by + and -."""
        total = 0
        sign = 1
        expect_term = True
        # ASCII only, and an octal number ends at its first non-octal digit, as QEMU's
        # strtoull(base 0) does: "09" is 0 followed by a stray '9'.
        for token in re.findall(r"\s*(\$\w+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*|[+-]|\S)",
                                text, re.ASCII):
            if expect_term:
                total += sign * self._term(token)
                expect_term = False
            elif token in "+-":
                sign = 1 if token == "+" else -1
                expect_term = True
            else:
                raise CommandError(f"invalid char '{token[0]}' in expression")
        if expect_term:
            raise CommandError("unexpected end of expression")
        return total

    def _term(self, token: str) -> int:
        cpu = self._cpu()
        if token.startswith("$"):
            reg = token[1:]
            if reg == "pc":
                return int(cpu.pc)
            if reg in ABI_NAMES:
                return int(cpu.x[ABI_NAMES.index(reg)])
            if re.fullmatch(r"x([12]?[0-9]|3[01])", reg):
                return int(cpu.x[int(reg[1:])])
            raise CommandError(f"unknown register '{reg}'")
        if token[:2].lower() == "0x":
            return int(token, 16)
        if token[0] == "0":
            return int(token, 8)
        if token[0] in "123456789":
            return int(token)
        raise CommandError(f"invalid char '{token[0]}' in expression")

    # -- NE2000 --------------------------------------------------------------------------

    def _info_ne2000(self, _args: list[str]) -> str:
        assert self.machine is not None
        if not self.machine.nics:
            return "no NE2000 on this machine\n"
        return "".join(describe_ne2000(board, self.net) for board in self.machine.nics)


def set_link(net: Net, name: str, up: bool) -> None:
    """qmp_set_link: the named client's link, and its peer's when that peer is a NIC."""
    client = next((c for c in net.clients if c.name == name), None)
    if client is None:
        raise CommandError(f"Error: Device '{name}' not found")
    client.link_down = not up
    peer: NetClient | None = client.peer
    if peer is not None and net.is_nic(peer):
        peer.link_down = not up


def parse_format(name: str, fmt: str) -> tuple[int, str, int]:
    """`/[count][format][size]` of x/xp: count, format letter (x d u), size in bytes."""
    match = re.fullmatch(r"([0-9]*)([a-z]*)", fmt)
    if match is None:
        raise CommandError(f"invalid char in format: '{fmt[0]}'")
    count = int(match.group(1)) if match.group(1) else 1
    kind, size = "x", 4
    for letter in match.group(2):
        if letter in "xdu":
            kind = letter
        elif letter in "bhw":
            size = {"b": 1, "h": 2, "w": 4}[letter]
        else:
            raise CommandError(f"invalid char in format: '{letter}'")
    return count, kind, size


def format_unit(value: int, kind: str, size: int) -> str:
    bits = 8 * size
    if kind == "x":
        return f"0x{value:0{bits // 4}x}"
    digits = -(-bits * 10 // 33)
    if kind == "d" and value >= 1 << (bits - 1):
        value -= 1 << bits
    return f"{value:{digits}d}"


def _flags(value: int, names: tuple[str, ...]) -> str:
    return " ".join(n for i, n in enumerate(names) if value >> i & 1) or "-"


def describe_ne2000(board: Any, net: Net) -> str:
    """Every DP8390 register (datasheet names) by page, the ring, IRQ state and counters."""
    chip = board.chip
    nc = board.nc
    cr = chip.cmd
    state = "STP" if cr & 0x01 else "STA"
    stats = chip.stats
    mar = " ".join(f"{b:02x}" for b in chip.mar)
    filtered = " ".join(f"{k}={v}" for k, v in stats.filtered.items() if v) or "none"
    peer = nc.peer.name if nc.peer is not None else "none"
    ring_pages = max(0, (chip.pstop - chip.pstart) >> 8)
    lines = [
        f"{nc.name}: {nc.info_str},link={'down' if nc.link_down else 'up'},peer={peer},"
        f"irq={'high' if board.irq.level else 'low'}",
        f"  CR     0x{cr:02x}  page {cr >> 6}, {state}, {CR_DMA[cr >> 3 & 7]}",
        f"  page 0 read:  CLDA0=00 CLDA1=00 BNRY={chip.bnry:02x} TSR={chip.tsr:02x} NCR=00 "
        f"FIFO=00 ISR={chip.isr:02x} CRDA0={chip.rsar & 0xFF:02x} CRDA1={chip.rsar >> 8:02x} "
        f"ID0=50 ID1=43 RSR={chip.rsr:02x} CNTR0=00 CNTR1=00 CNTR2=00",
        f"  page 0 write: PSTART={chip.pstart >> 8:02x} PSTOP={chip.pstop >> 8:02x} "
        f"BNRY={chip.bnry:02x} TPSR={chip.tpsr:02x} TBCR={chip.tbcr:04x} "
        f"RSAR={chip.rsar:04x} RBCR={chip.rbcr:04x} RCR={chip.rcr:02x} TCR={chip.tcr:02x} "
        f"DCR={chip.dcr:02x} IMR={chip.imr:02x}",
        f"  page 1:       PAR={':'.join(f'{b:02x}' for b in chip.par)} CURR={chip.curr:02x} "
        f"MAR={mar}",
        f"  page 2 read:  PSTART={chip.pstart >> 8:02x} PSTOP={chip.pstop >> 8:02x} "
        f"RNPP={chip.rnpp:02x} TPSR={chip.tpsr:02x} LNPP={chip.lnpp:02x} "
        f"ACU={chip.ac >> 8:02x} ACL={chip.ac & 0xFF:02x} RCR={chip.rcr:02x} "
        f"TCR={chip.tcr:02x} DCR={chip.dcr:02x} IMR={chip.imr:02x}",
        f"  ring:   PSTART=0x{chip.pstart >> 8:02x} PSTOP=0x{chip.pstop >> 8:02x} "
        f"BNRY=0x{chip.bnry:02x} CURR=0x{chip.curr:02x} pages={ring_pages} "
        f"free={chip.free_pages()} can_receive={'yes' if chip.can_receive() else 'no'}",
        f"  ISR=0x{chip.isr:02x} ({_flags(chip.isr, ISR_BITS)}) "
        f"IMR=0x{chip.imr:02x} ({_flags(chip.imr, ISR_BITS)}) "
        f"RCR=0x{chip.rcr:02x} ({_flags(chip.rcr, RCR_BITS)})",
        f"  rx: offered={stats.offered} accepted={stats.accepted} filtered: {filtered}",
        f"  tx: sent={stats.tx_sent} out_of_range={stats.tx_out_of_range} "
        f"empty={stats.tx_empty}",
        f"  queue: {len(nc.incoming_queue)} frames waiting"
        f"{' (receive disabled)' if nc.receive_disabled else ''}",
    ]
    return "\n".join(lines) + "\n"


# -- the chardev -------------------------------------------------------------------------

@dataclass(frozen=True)
class ChardevSpec:
    """A parsed `-monitor` argument: kind is stdio, unix or tcp (or none)."""

    kind: str
    path: str = ""
    address: tuple[str, int] = ("", 0)
    wait: bool = True


def parse_chardev(text: str) -> ChardevSpec:
    """QEMU's `-monitor` chardev spelling: stdio | none | unix:PATH,server[,nowait] |
    tcp:HOST:PORT,server[,nowait] (also server=on, wait=off)."""
    opts = parse_opts(text, "backend")
    backend = opts.require("backend")
    flags = dict(opts.values)
    del flags["backend"]
    if flags.pop("nowait", None) is not None:
        flags.setdefault("wait", "off")
    for key, value in flags.items():
        if key not in ("server", "wait"):
            raise UserError(f"Parameter '{key}' is unexpected")
        if value not in ("on", "off"):
            raise UserError(f"Parameter '{key}' expects 'on' or 'off'")
    if backend in ("stdio", "none"):
        if flags:
            raise UserError(f"'{backend}' takes no options")
        return ChardevSpec(backend)
    kind, _, rest = backend.partition(":")
    if kind not in ("unix", "tcp"):
        raise UserError(f"chardev '{backend}' is not supported (stdio, unix:, tcp:)")
    if flags.get("server") != "on":
        raise UserError("only server mode is supported (add ',server,nowait')")
    wait = flags.get("wait", "on") == "on"
    if kind == "unix":
        if not rest:
            raise UserError("unix: needs a socket path")
        return ChardevSpec("unix", path=rest, wait=wait)
    return ChardevSpec("tcp", address=parse_host_port(rest), wait=wait)


class _Session:
    """One client: line assembly, prompt, and output through an `FdWriter` (shared with
    the console when the session is stdio), never blocking the loop."""

    def __init__(self, server: MonitorServer, read_fd: int | None, out: FdWriter,
                 sock: socket.socket | None) -> None:
        self.server = server
        self.read_fd = read_fd
        self.out = out
        self.sock = sock
        self._in = bytearray()
        self._overlong = False
        self._reading = False
        # A regular file or /dev/null as stdin: epoll refuses them, and reading them
        # never waits, so they are read a chunk per loop iteration instead.
        self._pollable = read_fd is not None and fd_pollable(read_fd)
        self._read_scheduled = False
        self.closed = False

    def start(self) -> None:
        self.out.on_progress = self._check_output
        if self.sock is not None:
            self.out.on_error = lambda _err: self.close()
        self.write(f"{BANNER}\n{PROMPT}")
        if self.read_fd is None:
            # stdin was closed before toynic started: no input, as after end of file.
            self.close()
            return
        self._set_reading(True)

    def _set_reading(self, on: bool) -> None:
        if on == self._reading or self.closed or self.read_fd is None:
            return
        self._reading = on
        if self._pollable:
            self.server.loop.set_read_handler(self.read_fd, self._on_readable if on else None)
        elif on:
            self._schedule_read()

    def _schedule_read(self) -> None:
        if not self._read_scheduled:
            self._read_scheduled = True
            self.server.loop.bh(self._read_bh)

    def _read_bh(self) -> None:
        self._read_scheduled = False
        if self._reading and not self.closed:
            self._on_readable()
            if self._reading and not self.closed:
                self._schedule_read()

    def write(self, text: str) -> None:
        self.out.write(text.replace("\n", "\r\n").encode(errors="replace"))
        self.out.flush()
        self._check_output()

    def _check_output(self) -> None:
        """Read no commands while this much of the output is unsent (QEMU's monitor
        stops reading its chardev, too)."""
        if self.closed:
            return
        resume = self.out.pending < OUTPUT_HIGH_WATER
        if resume and not self._reading and b"\n" in self._in:
            # Lines that arrived while output was backed up run now, not on the next read.
            self.server.loop.bh(self._process)
        self._set_reading(resume)

    def _on_readable(self) -> None:
        assert self.read_fd is not None
        try:
            data = os.read(self.read_fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self._in += data
        self._process()

    def _process(self) -> None:
        while not self.closed and self._reading:
            end = self._in.find(b"\n")
            if end < 0:
                if len(self._in) > MAX_LINE:
                    # Keep nothing of an overlong line; its end is dropped when it comes.
                    self._in.clear()
                    self._overlong = True
                return
            line = bytes(self._in[:end]).rstrip(b"\r").decode(errors="replace")
            del self._in[:end + 1]
            if self._overlong or end > MAX_LINE:
                self._overlong = False
                self.write(f"line too long (at most {MAX_LINE} bytes)\n{PROMPT}")
            else:
                self._run(line)

    def _run(self, line: str) -> None:
        monitor = self.server.monitor
        output = monitor.execute(line)
        if monitor.quit_requested:
            self.write(output)
            self.close()
            return
        self.write(output + PROMPT)

    def close(self) -> None:
        if self.closed:
            return
        self._set_reading(False)
        self.closed = True
        if self.out.on_progress == self._check_output:
            self.out.on_progress = None
        if self.sock is not None:
            # One last try for unsent output; a client that does not read loses it.
            self.out.flush()
            self.out.close()
            self.sock.close()
        self.server.session_closed(self)


class MonitorServer:
    """Serves a Monitor on stdio or a listening unix/tcp socket (QEMU's chardev)."""

    def __init__(self, loop: MainLoop, monitor: Monitor, spec: ChardevSpec,
                 stdout: FdWriter | None = None) -> None:
        """`stdout`: where a stdio monitor writes (the console's writer, so that the two
        keep their order); without it the server makes, and closes, its own."""
        self.loop = loop
        self.monitor = monitor
        self.spec = spec
        self.session: _Session | None = None
        self._listen: socket.socket | None = None
        self._acceptor: Acceptor | None = None
        self._own_stdout: FdWriter | None = None
        self._waiting = False
        if spec.kind == "stdio":
            if stdout is None:
                stdout = self._own_stdout = FdWriter.for_stdout(loop)
            # Python leaves sys.stdin None when fd 0 was closed at startup (fd 0 may have
            # been reused since by a descriptor of ours).
            self.session = _Session(self, _STDIN_FD if sys.stdin is not None else None, stdout,
                                    None)
            self.session.start()
        elif spec.kind in ("unix", "tcp"):
            self._listen = self._bind(spec)
            self._acceptor = Acceptor(loop, self._listen, self._accepted, _report_monitor)
            self._acceptor.set_accepting(True)

    @staticmethod
    def _bind(spec: ChardevSpec) -> socket.socket:
        if spec.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.stat(spec.path).st_mode):
                    os.unlink(spec.path)
            where: Any = spec.path
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            where = spec.address
        try:
            sock.bind(where)
            sock.listen(1)
        except OSError as err:
            sock.close()
            raise UserError(f"Failed to bind socket to {describe_address(spec)}: "
                            f"{err.strerror or err}") from None
        sock.setblocking(False)
        return sock

    @property
    def address(self) -> Any:
        """Where the listening socket is bound (for tcp: (host, port), port 0 resolved)."""
        return None if self._listen is None else self._listen.getsockname()

    def _accepted(self, sock: socket.socket, _peer: Any) -> None:
        assert self._acceptor is not None
        sock.setblocking(False)
        self._acceptor.set_accepting(False)
        self.session = _Session(self, sock.fileno(), FdWriter(self.loop, sock.fileno()), sock)
        self.session.start()
        if self._waiting:
            self._waiting = False
            self.loop.stop()

    def wait_for_client(self) -> bool:
        """QEMU's `server,wait`: block (serving the loop) until the first client connects.
        False if the loop was stopped first (a signal)."""
        if self._listen is None or self.session is not None:
            return True
        print(f"toynic: waiting for connection on: {describe_address(self.spec)}",
              file=sys.stderr, flush=True)
        self._waiting = True
        self.loop.run_forever()
        self._waiting = False
        return self.session is not None

    def session_closed(self, session: _Session) -> None:
        if self.session is session:
            self.session = None
            if self._acceptor is not None:
                self._acceptor.set_accepting(True)

    def close(self) -> None:
        """Drop the client and the listening socket (a unix socket file is removed)."""
        if self._acceptor is not None:
            self._acceptor.close()
            self._acceptor = None
        if self.session is not None:
            self.session.close()
        if self._own_stdout is not None:
            self._own_stdout.flush()
            self._own_stdout.close()
        if self._listen is not None:
            self._listen.close()
            self._listen = None
            if self.spec.kind == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(self.spec.path)


def _report_monitor(text: str) -> None:
    print(f"toynic: monitor: {text}", file=sys.stderr, flush=True)


def describe_address(spec: ChardevSpec) -> str:
    if spec.kind == "unix":
        return f"unix:{spec.path},server=on"
    host, port = spec.address
    return f"tcp:{host}:{port},server=on"
