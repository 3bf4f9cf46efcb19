"""Trace events — QEMU's trace/control.c with its "log" backend (`-trace`, `-D`).

Every layer boundary a frame crosses has a named event (the registry `EVENTS`; names
as QEMU's where QEMU has the concept, e.g. `ne2000_ioport_write`). A `Trace` holds one
boolean attribute per event, all False until a pattern turns them on, so a traced call
site costs one attribute test when tracing is off and builds nothing:

    if self.trace.ne2000_transmit:
        self.trace.emit("ne2000_transmit", nic=self.name, len=count, tpsr=f"{tpsr:#04x}")

Objects that trace (NetClient, NetQueue, IrqLine, the NE2000) hold a `trace` attribute
that starts as `DISABLED` (a Trace that can never be turned on); `Trace.attach` hands
them a live one. One line per event, as QEMU's log backend prints it:
`<event> key=value key=value`; a Trace with a stamp (`set_stamp`) puts it before the
event: `t=NS machine=NAME` in a deterministic lab, `t=NS` (the machine's virtual time)
on the command line when there is a machine. Lines go through the standard
`logging` module, one logger per subsystem (`toynic.trace.ne2000`, `.net`,
`.net_socket`, `.net_stream`, `.net_tap`, `.net_vde`, `.hub`, `.irq`), at DEBUG level;
`open_log` adds a handler writing to stderr, a stream or a file (`-D`).

Patterns follow QEMU: `*` and `?` globs, a leading `-` disables, a name without a glob
that matches nothing earns the warning "trace event 'x' does not exist"; an events file
holds one pattern per line, with `#` comments and blank lines. It must be a regular file
of at most EVENTS_FILE_LIMIT bytes (`/dev/zero` or a FIFO would be read forever).

A log that fails to write (a full disk under `-D`) is reported once, in one line, and
no longer written; the events stay on for any other handler, and the run goes on.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO, runtime_checkable

from emu.core.errors import UserError
from emu.core.opts import Opts

LOGGER_PREFIX = "toynic.trace"
TRACE_KEYS = ("enable", "events", "file")
# An events file lists patterns, one a line: every event name fits in a few KiB.
EVENTS_FILE_LIMIT = 1 << 20


@dataclass(frozen=True)
class EventInfo:
    """One trace event: its name, subsystem (logger suffix), fields and meaning."""

    name: str
    subsystem: str
    fields: str
    doc: str


EVENTS: tuple[EventInfo, ...] = (
    # NE2000 (QEMU: hw/net/ne2000.c; ne2000_ioport_* are QEMU's own names)
    EventInfo("ne2000_ioport_read", "ne2000", "nic addr page reg val",
              "guest reads chip register `reg` (datasheet name) on page `page`"),
    EventInfo("ne2000_ioport_write", "ne2000", "nic addr page reg val [bits]",
              "guest writes chip register `reg`; CR/ISR/IMR values decoded into `bits`"),
    EventInfo("ne2000_ioport_ignored", "ne2000", "nic op addr size",
              "an access the board ignores (wrong width or unused port)"),
    EventInfo("ne2000_page3_ignored", "ne2000", "nic op addr reg val",
              "a page-3 (RTL8029) register other than CR: a write has no effect, a read "
              "answers QEMU's constant `val`"),
    EventInfo("ne2000_reset", "ne2000", "nic",
              "guest read the reset port: ISR=RST, PROM rebuilt"),
    EventInfo("ne2000_dma_start", "ne2000", "nic dir rsar count",
              "CR starts remote DMA (dir=read|write) at RSAR for RBCR bytes"),
    EventInfo("ne2000_dma_done", "ne2000", "nic dir rsar width",
              "remote DMA byte count reached 0: ISR.RDC set; `width` bytes per data-port access"),
    EventInfo("ne2000_transmit", "ne2000", "nic len tpsr",
              "CR.TXP: the frame at TPSR (TBCR bytes) goes to the net layer"),
    EventInfo("ne2000_transmit_error", "ne2000", "nic reason len tpsr",
              "CR.TXP with nothing sendable (reason=empty|out_of_range)"),
    EventInfo("ne2000_receive", "ne2000", "nic len pages curr bnry isr",
              "a frame was written into the ring (len: runts padded to 60): CURR "
              "before->after, ISR after"),
    EventInfo("ne2000_receive_drop", "ne2000", "nic reason",
              "a frame offered to the chip was filtered or dropped, and why"),
    EventInfo("ne2000_loopback", "ne2000", "nic mode len crc stored",
              "TCR loopback: a transmitted frame came back to the receiver instead of the "
              "wire (crc=ok|bad: the receiver's FCS check with TCR.CRC; stored=yes|no)"),
    EventInfo("ne2000_overflow", "ne2000", "nic curr bnry free",
              "lossless=off: a frame found no room in the ring; ISR.OVW, receive halted "
              "until the driver stops the chip"),
    EventInfo("ne2000_missed", "ne2000", "nic reason cntr2",
              "a frame was missed (reason=ring_full|halted): RSR.MPA, CNTR2 after"),
    EventInfo("ne2000_counter_overflow", "ne2000", "nic counter isr",
              "a tally counter (CNTR0-2) reached 0xC0: ISR.CNT set"),
    # interrupt lines (QEMU: hw/core/irq.c)
    EventInfo("irq_set", "irq", "line level",
              "an interrupt line changed level"),
    # peers and queues (QEMU: net/net.c, net/queue.c)
    EventInfo("net_queue_send", "net", "sender receiver len result",
              "a frame was delivered at once (result: >0 taken, <0 dropped)"),
    EventInfo("net_queue_send_batch", "net", "sender receiver frames bytes taken",
              "a batch of frames was offered; `taken` delivered at once"),
    EventInfo("net_queue_append", "net", "sender receiver frames queued reason",
              "frames were queued for later (reason=busy|disabled|cannot_receive|backlog|refused)"),
    EventInfo("net_queue_flush", "net", "receiver delivered queued",
              "queued frames were re-offered; `queued` are still waiting"),
    EventInfo("net_queue_drop", "net", "sender receiver frames reason",
              "frames were dropped (reason=link_down|no_peer|queue_full|receiver_link_down"
              "|receiver_dropped)"),
    EventInfo("net_queue_purge", "net", "receiver sender frames",
              "frames a sender had queued were discarded"),
    # socket netdev (QEMU: net/socket.c)
    EventInfo("net_socket_read", "net_socket", "netdev bytes frames",
              "bytes read from the socket and the complete frames they held"),
    EventInfo("net_socket_write", "net_socket", "netdev bytes",
              "bytes the kernel took in one send"),
    EventInfo("net_socket_partial_send", "net_socket", "netdev sent remaining",
              "the kernel took only part of the output; the rest waits for POLLOUT"),
    EventInfo("net_socket_backpressure", "net_socket", "netdev dir state",
              "dir=read: reading stops/resumes while the peer's queue is full; "
              "dir=write: the output buffer is full/drained"),
    EventInfo("net_socket_connect", "net_socket", "netdev peer",
              "an outgoing connection is established"),
    EventInfo("net_socket_accept", "net_socket", "netdev peer",
              "a listening netdev accepted a connection"),
    EventInfo("net_socket_connect_error", "net_socket", "netdev peer error",
              "an outgoing connection failed"),
    EventInfo("net_socket_disconnect", "net_socket", "netdev reason",
              "the connection ended (reason=eof|error|oversize)"),
    EventInfo("net_socket_oversize", "net_socket", "netdev",
              "a record longer than the largest frame: the connection is closed"),
    EventInfo("net_socket_empty", "net_socket", "netdev count",
              "zero-length records or datagrams were ignored"),
    # stream netdev (QEMU: net/stream.c)
    EventInfo("net_stream_connect", "net_stream", "netdev peer",
              "a stream netdev has a peer (accepted or connected); peer is its URI"),
    EventInfo("net_stream_disconnect", "net_stream", "netdev reason",
              "a stream netdev's peer left (reason=eof|error|oversize)"),
    EventInfo("net_stream_connect_error", "net_stream", "netdev error",
              "a stream client's connect failed"),
    EventInfo("net_stream_reconnect", "net_stream", "netdev",
              "a stream client's reconnect-ms timer fired: it connects again"),
    # tap netdev (QEMU: net/tap.c) and vde netdev (QEMU: net/vde.c); one read or write
    # is one frame on both (netdev.frame_fd)
    EventInfo("net_tap_read", "net_tap", "netdev len",
              "a frame read from the tap interface"),
    EventInfo("net_tap_write", "net_tap", "netdev len",
              "a frame written to the tap interface"),
    EventInfo("net_tap_backpressure", "net_tap", "netdev dir state",
              "dir=read: reading the tap stops/resumes while the peer's queue is full; "
              "dir=write: the tap takes no more frames / takes them again"),
    EventInfo("net_tap_error", "net_tap", "netdev op error",
              "a read (reading then stops) or write (the frame is dropped) failed"),
    EventInfo("net_vde_read", "net_vde", "netdev len",
              "a frame (one datagram) came from the VDE switch"),
    EventInfo("net_vde_write", "net_vde", "netdev len",
              "a frame (one datagram) went to the VDE switch"),
    EventInfo("net_vde_backpressure", "net_vde", "netdev dir state",
              "dir=read: reading the switch's datagrams stops/resumes while the peer's "
              "queue is full; dir=write: the switch's socket is full/drained"),
    EventInfo("net_vde_error", "net_vde", "netdev op error",
              "a read, a write or the control connection (op=control: the switch closed "
              "it) failed"),
    # toynic's filter-netem (netdev/filter_netem.py; after Linux netem, QEMU has none)
    EventInfo("net_filter_netem", "net", "filter netdev dir fate len delay_ns",
              "filter-netem gave a frame a fate other than passing unchanged: "
              "drop|duplicate|corrupt|reorder|delay (held `delay_ns` on the net's timeline)"),
    # hubs (QEMU: net/hub.c)
    EventInfo("net_hub_forward", "hub", "hub port to frames len",
              "a hub port copied frames to every other port"),
    EventInfo("net_hub_hold", "hub", "hub port",
              "a port refuses frames (they wait in its queue): another port's peer is busy"),
)

EVENT_NAMES: tuple[str, ...] = tuple(event.name for event in EVENTS)
SUBSYSTEMS: tuple[str, ...] = tuple(dict.fromkeys(event.subsystem for event in EVENTS))
_SUBSYSTEM_OF = {event.name: event.subsystem for event in EVENTS}


def logger_name(subsystem: str) -> str:
    return f"{LOGGER_PREFIX}.{subsystem}"


def is_pattern(text: str) -> bool:
    return "*" in text or "?" in text


def _glob(pattern: str) -> re.Pattern[str]:
    """QEMU's g_pattern_match_simple: `*` any run, `?` one character, nothing else special."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def match_events(pattern: str) -> list[str]:
    """The event names `pattern` selects (a glob, or one exact name)."""
    if not is_pattern(pattern):
        return [pattern] if pattern in _SUBSYSTEM_OF else []
    regex = _glob(pattern)
    return [name for name in EVENT_NAMES if regex.match(name)]


def read_events_file(path: str) -> str:
    """The text of an events file. UserError (`PATH: reason`) unless it is a regular file
    of at most EVENTS_FILE_LIMIT bytes; OSError if it cannot be read."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"{path}: not a regular file")
        with open(fd, "rb", closefd=False) as file:
            data = file.read(EVENTS_FILE_LIMIT + 1)
    finally:
        os.close(fd)
    if len(data) > EVENTS_FILE_LIMIT:
        raise UserError(f"{path}: larger than {EVENTS_FILE_LIMIT >> 20} MiB, "
                        "the limit for an events file")
    return data.decode("utf-8", errors="replace")


def help_text() -> str:
    """`-trace help`: every event name, one per line (as QEMU prints them)."""
    return "".join(f"{name}\n" for name in EVENT_NAMES)


class Trace:
    """Which events are on, and where their lines go. Flip events at any time."""

    __slots__ = (*EVENT_NAMES, "_frozen", "_handler", "_loggers", "_extra", "_stamp")

    def __init__(self, *, frozen: bool = False) -> None:
        init = object.__setattr__
        for name in EVENT_NAMES:
            init(self, name, False)
        init(self, "_frozen", frozen)
        init(self, "_handler", None)
        init(self, "_loggers", {name: logging.getLogger(logger_name(sub))
                                for name, sub in _SUBSYSTEM_OF.items()})
        init(self, "_extra", {"toynic_trace": self})
        init(self, "_stamp", None)

    # -- choosing events -------------------------------------------------------------------

    def set_events(self, pattern: str, on: bool = True) -> list[str]:
        """Turn the events `pattern` selects on (or off); returns their names."""
        names = match_events(pattern)
        for name in names:
            setattr(self, name, on)
        if names and on:
            logging.getLogger(LOGGER_PREFIX).setLevel(logging.DEBUG)
        return names

    def enable(self, pattern: str) -> list[str]:
        return self.set_events(pattern, True)

    def disable(self, pattern: str) -> list[str]:
        return self.set_events(pattern, False)

    def apply(self, spec: str) -> str | None:
        """One QEMU `-trace` pattern: `-` in front disables. Returns a warning, if any."""
        on = not spec.startswith("-")
        pattern = spec if on else spec[1:]
        if not self.set_events(pattern, on) and not is_pattern(pattern):
            return f"trace event '{pattern}' does not exist"
        return None

    def apply_file(self, path: str) -> list[str]:
        """A QEMU events file: one pattern per line, `#` comments. Returns warnings,
        each prefixed `PATH:LINE: `. UserError if it is not a regular file or too large
        (see `read_events_file`), OSError if it cannot be read."""
        warnings: list[str] = []
        # newline=None: \r\n and \r end lines too, as when reading the file as text.
        lines = io.StringIO(read_events_file(path), newline=None)
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            warning = self.apply(text)
            if warning is not None:
                warnings.append(f"{path}:{number}: warning: {warning}")
        return warnings

    def enabled(self) -> list[str]:
        return [name for name in EVENT_NAMES if getattr(self, name)]

    # -- output ----------------------------------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        """Write one event line: `event key=value ...` (call only when the event is on)."""
        text = " ".join([event, *(f"{key}={value}" for key, value in fields.items())])
        if self._stamp is not None:
            text = f"{self._stamp()} {text}"
        self._loggers[event].debug(text, extra=self._extra)

    def set_stamp(self, stamp: Callable[[], str] | None) -> None:
        """Put `stamp()` (e.g. `t=1200 machine=A`: the global virtual time and the machine,
        in a deterministic lab) before each line's event name; None: no prefix."""
        if self._frozen:
            raise RuntimeError("DISABLED cannot trace: make a Trace() and attach it")
        object.__setattr__(self, "_stamp", stamp)

    def open_log(self, target: str | TextIO | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        """Send this trace's lines to `target`: a path (QEMU's -D, truncated), a text
        stream, or stderr. Replaces an earlier target. OSError if the file won't open.
        The first write error goes to `on_error` as one line (default: `toynic: LINE` on
        stderr) and ends the output to `target`."""
        report = on_error or _report
        if target is None:
            handler = _LogHandler(sys.stderr, "<stderr>", report, owned=False)
        elif isinstance(target, str):
            handler = _LogHandler(open(target, "w", encoding="utf-8"),  # noqa: SIM115
                                  target, report, owned=True)
        else:
            handler = _LogHandler(target, getattr(target, "name", repr(target)), report,
                                  owned=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        # Several Traces may live in one process; each handler keeps to its own lines.
        handler.addFilter(lambda record: getattr(record, "toynic_trace", None) is self)
        self.close()
        object.__setattr__(self, "_handler", handler)
        logging.getLogger(LOGGER_PREFIX).addHandler(handler)

    def close(self) -> None:
        """Detach and close the handler `open_log` added (idempotent)."""
        handler = self._handler
        object.__setattr__(self, "_handler", None)
        if handler is not None:
            logging.getLogger(LOGGER_PREFIX).removeHandler(handler)
            handler.close()

    # -- wiring ----------------------------------------------------------------------------

    def attach(self, *roots: Traced | TracedGroup | None) -> None:
        """Hand this Trace to everything under `roots`: objects with `set_trace` (a Machine,
        a NIC, a NetClient) and collections with `clients` (a netdev.net.Net)."""
        for root in roots:
            if isinstance(root, Traced):
                root.set_trace(self)
            if isinstance(root, TracedGroup):
                for client in root.clients:
                    client.set_trace(self)

    def detach(self, *roots: Traced | TracedGroup | None) -> None:
        """Give the objects under `roots` back the DISABLED trace."""
        DISABLED.attach(*roots)

    def __setattr__(self, name: str, value: Any) -> None:
        if value and name in _SUBSYSTEM_OF and self._frozen:
            raise RuntimeError("DISABLED cannot trace: make a Trace() and attach it")
        object.__setattr__(self, name, value)


@runtime_checkable
class Traced(Protocol):
    """What traces: an object that takes a Trace (a Machine, an NE2000, a NetClient)."""

    def set_trace(self, trace: Trace) -> None: ...


@runtime_checkable
class TracedGroup(Protocol):
    """A collection of traced objects (netdev.net.Net and its clients)."""

    @property
    def clients(self) -> Iterable[Traced]: ...


def _report(message: str) -> None:
    print(f"toynic: {message}", file=sys.stderr)


class _LogHandler(logging.StreamHandler[TextIO]):
    """A Trace's output. The first write error is reported once and stops this handler:
    a full disk must cost neither a traceback per event nor the run's exit status."""

    def __init__(self, stream: TextIO, name: str, report: Callable[[str], None],
                 *, owned: bool) -> None:
        super().__init__(stream)
        self._name = name
        self._report = report
        self._owned = owned  # a file open_log opened (and so closes)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        # Above every level: logging no longer calls this handler at all.
        self.setLevel(logging.CRITICAL + 1)
        # Closing fails again on the lines still buffered; the first error says it all.
        self._release()
        self._say(error)

    def _say(self, error: OSError) -> None:
        # Reporting goes to stderr, which may be the very stream that failed.
        with contextlib.suppress(OSError):
            self._report(f"Error writing logfile {self._name}: {error.strerror or error}; "
                         "trace output to it stopped")

    def _release(self) -> OSError | None:
        """Forget the stream, closing it if it is ours; returns the error closing hit."""
        stream, self.stream = self.stream, None
        if stream is not None and self._owned:
            try:
                stream.close()  # closes the file even when flushing its buffer fails
            except OSError as error:
                return error
        return None

    def close(self) -> None:
        with self.lock:
            error = self._release()
        if error is not None:
            self._say(error)
        super().close()


# The one shared, never-enabled Trace: the default of every traced object. Immutable.
DISABLED = Trace(frozen=True)


def configure_trace(
    trace: Trace, options: Sequence[Opts], logfile: str | None, warn: Callable[[str], None]
) -> None:
    """Apply `-trace [enable=]PATTERN[,events=FILE][,file=FILE]` options in order, then
    open the log (`-D FILE`, or the last `file=`, as QEMU's log backend; else stderr).
    `warn` gets each warning line without the program name; bad input is a UserError."""
    for opts in options:
        for key in opts.values:
            if key not in TRACE_KEYS:
                raise UserError(f"-trace {opts.text}: Invalid parameter '{key}'")
        pattern = opts.get("enable")
        if pattern is not None:
            warning = trace.apply(pattern)
            if warning is not None:
                warn(f"-trace {opts.text}: warning: {warning}")
        events = opts.get("events")
        if events is not None:
            try:
                warnings = trace.apply_file(events)
            except OSError as err:
                raise UserError(f"-trace {opts.text}: {events}: {err.strerror or err}") from None
            except UserError as err:
                raise UserError(f"-trace {opts.text}: {err}") from None
            for warning in warnings:
                warn(warning)
        logfile = opts.get("file") or logfile
    try:
        trace.open_log(logfile, on_error=warn)
    except OSError as err:
        raise UserError(f"Error opening logfile {logfile}: {err.strerror or err}") from None
