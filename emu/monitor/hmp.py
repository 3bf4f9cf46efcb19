"""Monitor — the human monitor (HMP) of QEMU's monitor/hmp.c and monitor/hmp-cmds.c.

`Monitor` executes one command line and returns its output text: `info network`,
`info registers`, `info ne2000`, `info status`, `info trace-events`, `stop`, `cont`,
`set_link NAME on|off`, `trace-event NAME on|off`, `x/FMT ADDR`, `xp/FMT ADDR`, `help`, `quit`.
Spelling and output follow QEMU 7.2's HMP; every bad command gets one line of error.
Without a machine (a frame relay) only the network and tracing commands, `help` and
`quit` exist. A command parses its arguments and leaves the work to its owner:
`set_link` to the net layer (`netdev.net.Net.set_link`), `stop`/`cont` to the machine
(`emu.board.machine.Machine.pause`, `emu.board.machine.Machine.resume`), `info ne2000` to the device
(`devices.ne2000.Ne2000Isa.describe`). The chardev a client types into is
`emu.monitor.chardev`.

Deliberate differences from QEMU: `x`/`xp` read RAM only (QEMU would also read device
registers, with their side effects) and dump at most MAX_DUMP_UNITS units per command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from emu.board.layout import RAM_BASE
from emu.board.machine import GuestCpu, Machine
from emu.core.errors import UserError
from emu.core.trace import EVENT_NAMES, Trace, match_events
from emu.cpu import csr
from netdev.net import Net

PROMPT = "(toynic) "
BANNER = "toynic monitor - type 'help' for more information"
MAX_DUMP_UNITS = 4096

ABI_NAMES = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
    "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
    "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
)
# The machine-mode CSRs a reader needs to follow traps and interrupts, in QEMU's order.
DUMPED_CSRS = (
    ("mhartid", csr.MHARTID), ("mstatus", csr.MSTATUS), ("mip", csr.MIP), ("mie", csr.MIE),
    ("mtvec", csr.MTVEC), ("mepc", csr.MEPC), ("mcause", csr.MCAUSE), ("mtval", csr.MTVAL),
    ("mscratch", csr.MSCRATCH), ("minstret", csr.MINSTRET),
)


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
            Command(("stop", "s"), "", "stop emulation", self._stop, needs_machine=True),
            Command(("cont", "c"), "", "resume emulation", self._cont, needs_machine=True),
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
        try:
            self.net.set_link(args[0], args[1] == "on")
        except UserError as err:
            raise CommandError(f"Error: {err}") from None
        return ""

    def _info_status(self, _args: list[str]) -> str:
        machine = self.machine
        if machine is not None and machine.exit_code is not None:
            return "VM status: shutdown\n"
        if machine is not None and machine.paused:
            return "VM status: paused\n"
        return "VM status: running\n"

    # -- run state -----------------------------------------------------------------------

    def _stop(self, args: list[str]) -> str:
        if args:
            raise CommandError("stop: extraneous characters at the end of line")
        assert self.machine is not None
        try:
            self.machine.pause()
        except UserError as err:
            raise CommandError(f"Error: {err}") from None
        return ""

    def _cont(self, args: list[str]) -> str:
        if args:
            raise CommandError("cont: extraneous characters at the end of line")
        assert self.machine is not None
        if self.machine.exit_code is not None:
            raise CommandError("Error: Resetting the Virtual Machine is required")
        self.machine.resume()
        return ""

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

    def _cpu(self) -> GuestCpu:
        assert self.machine is not None
        return self.machine.cpu

    def _info_registers(self, _args: list[str]) -> str:
        cpu = self._cpu()
        lines = ["CPU#0", f" {'pc':<8} {cpu.pc & 0xFFFFFFFF:08x}"]
        for name, number in DUMPED_CSRS:
            value = cpu.csr_read(number)
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
        return "".join(board.describe() for board in self.machine.nics)


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
