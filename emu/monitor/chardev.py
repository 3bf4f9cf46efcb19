"""The monitor's chardev — QEMU's chardev/char-stdio.c and chardev/char-socket.c as the
`-monitor` option uses them (qemu_chr_parse_compat for the spelling).

`parse_chardev` reads `-monitor stdio`, `unix:PATH,server,nowait` or
`tcp:HOST:PORT,server,nowait` (`-qmp` takes the same spellings); `MonitorServer` serves
a line protocol on it — an `emu.monitor.hmp.Monitor`, or a `LineService` per client such
as `emu.monitor.qmp.QmpSession` — with non-blocking fds on the MainLoop, one socket
client at a time, the next one after it leaves, as QEMU's socket chardev. Output lines
end in CRLF and each HMP answer ends with the prompt. Output goes through an
`emu.core.fdwriter.FdWriter` (on stdio, the console's own, so the two keep their order) and
commands are not read while OUTPUT_HIGH_WATER bytes of it wait. A stdin that epoll
refuses (a regular file, /dev/null) is read to its end, then treated as closed; a stdin
closed before toynic started is no input. A listening socket whose accept() lacks
descriptors is retried on a timer (`emu.core.acceptor.Acceptor`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from emu.core.acceptor import Acceptor
from emu.core.errors import UserError
from emu.core.fdwriter import FdWriter, fd_pollable
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.monitor.hmp import BANNER, PROMPT, Monitor
from netdev.sockaddr import Address, parse_host_port

MAX_LINE = 4096
# Stop reading a client's commands while this much of their output is still unsent.
OUTPUT_HIGH_WATER = 256 * 1024
_STDIN_FD = 0


@dataclass(frozen=True)
class ChardevSpec:
    """A parsed `-monitor` argument: kind is stdio, unix or tcp (or none)."""

    kind: str
    path: str = ""
    address: Address = ("", 0)
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


class LineService(Protocol):
    """One client's side of a monitor protocol: the text sent on connect, the answer to
    each line, and whether the client asked to end the session (quit)."""

    def greeting(self) -> str: ...

    def message_end(self, data: bytes | bytearray) -> int:
        """The length of the first complete message in `data`, its terminator included
        (-1: none yet)."""
        ...

    def answer(self, line: str) -> str: ...

    def overlong(self, limit: int) -> str: ...

    @property
    def done(self) -> bool: ...

    def closed(self) -> None: ...


# Makes the service for a new client; its argument writes text to that client at any
# time (QMP events).
SessionFactory = Callable[[Callable[[str], None]], LineService]


class _HmpService:
    """The human monitor as a LineService: banner, prompt after each answer."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def greeting(self) -> str:
        return f"{BANNER}\n{PROMPT}"

    def message_end(self, data: bytes | bytearray) -> int:
        end = data.find(b"\n")
        return end + 1 if end >= 0 else -1

    def answer(self, line: str) -> str:
        output = self.monitor.execute(line)
        return output if self.done else output + PROMPT

    def overlong(self, limit: int) -> str:
        return f"line too long (at most {limit} bytes)\n{PROMPT}"

    @property
    def done(self) -> bool:
        return self.monitor.quit_requested

    def closed(self) -> None:
        """Nothing to release: the Monitor outlives its sessions."""


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
        self.service = server.sessions(self.write)

    def start(self) -> None:
        self.out.on_progress = self._check_output
        if self.sock is not None:
            self.out.on_error = lambda _err: self.close()
        self.write(self.service.greeting())
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
        if self.closed:
            return
        self.out.write(text.replace("\n", "\r\n").encode(errors="replace"))
        self.out.flush()
        self._check_output()

    def _check_output(self) -> None:
        """Read no commands while this much of the output is unsent (QEMU's monitor
        stops reading its chardev, too)."""
        if self.closed:
            return
        resume = self.out.pending < OUTPUT_HIGH_WATER
        if resume and not self._reading and self.service.message_end(self._in) >= 0:
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
            size = self.service.message_end(self._in)
            end = size - 1
            if size < 0:
                if len(self._in) > MAX_LINE:
                    # Keep nothing of an overlong line; its end is dropped when it comes.
                    self._in.clear()
                    self._overlong = True
                return
            line = bytes(self._in[:size]).rstrip(b"\n").rstrip(b"\r").decode(errors="replace")
            del self._in[:size]
            if self._overlong or end > MAX_LINE:
                self._overlong = False
                self.write(self.service.overlong(MAX_LINE))
            else:
                self._run(line)

    def _run(self, line: str) -> None:
        self.write(self.service.answer(line))
        if self.service.done:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self._set_reading(False)
        self.service.closed()
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
    """Serves a Monitor (or the sessions a SessionFactory makes) on stdio or a listening
    unix/tcp socket (QEMU's chardev)."""

    def __init__(self, loop: MainLoop, monitor: Monitor | SessionFactory, spec: ChardevSpec,
                 stdout: FdWriter | None = None) -> None:
        """`stdout`: where a stdio monitor writes (the console's writer, so that the two
        keep their order); without it the server makes, and closes, its own."""
        self.loop = loop
        if isinstance(monitor, Monitor):
            hmp = _HmpService(monitor)
            self.sessions: SessionFactory = lambda _push: hmp
        else:
            self.sessions = monitor
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
            where: str | Address = spec.path
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
    def address(self) -> str | Address | None:
        """Where the listening socket is bound: for unix its path, for tcp (host, port)
        with port 0 resolved; None on stdio."""
        return None if self._listen is None else self._listen.getsockname()

    def _accepted(self, sock: socket.socket, _peer: object) -> None:
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
