"""Helpers for process-level and interop tests of the net plumbing (QEMU's tests/qtest/libqtest.c
and netdev-socket.c play this role upstream).

- ports and readiness: `free_port` and `free_ports` (the testing kit's, re-exported),
  `wait_for` (a polling helper with a deadline), and /proc-based views of a process's
  TCP sockets (`wait_listening`, `wait_accepted`, `rx_queue`), which observe toynic or
  QEMU without connecting to them;
- the stream wire format for test peers: `record` and `records` (the testing kit's,
  re-exported), `RecordReader`, and `pump`, a single-threaded select loop that sends and
  receives on several sockets with one deadline;
- processes: `Proc` (stderr/stdout captured to files, stopped by PID, killed by the kernel
  if the test process dies), `start_toynic`, `start_qemu` with a QMP client;
- `in_netns(fn)`: run `fn` in a forked child inside a fresh network namespace with `lo`
  up and a multicast route on it;
- resource probes: `fd_count`, `rss_bytes`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import pickle
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

# Re-exported, so the tests keep one import line for their socket helpers.
from emu.testing import free_port as free_port
from emu.testing import free_ports as free_ports
from emu.testing import record as record
from emu.testing import records as records

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
HEADER = struct.Struct(">I")
OVERSIZE_MESSAGE = "serious error: oversized packet received,connection terminated."

T = TypeVar("T")

_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_SIOCOUTQ = 0x5411
_TCP_LISTEN = 0x0A
_TCP_ESTABLISHED = 0x01
_SYS_PIDFD_OPEN = 434
_SYS_PIDFD_GETFD = 438


# --- waiting -----------------------------------------------------------------------------

def wait_for(
    predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition",
    interval: float = 0.005,
) -> T:
    """Poll `predicate` until it returns something truthy; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        # The pause between two looks at a condition no descriptor signals (another
        # process's output, a file's size): the deadline, not the pause, ends the wait.
        time.sleep(interval)


def unix_connect(path: Path | str) -> socket.socket | None:
    """A stream connection to the unix socket at `path`, or None while nobody listens
    there yet (the predicate of a wait_for)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


# --- ports and /proc views ---------------------------------------------------------------

@dataclass(frozen=True)
class TcpEntry:
    """One line of /proc/PID/net/tcp: addresses as (ip, port), queue sizes in bytes."""

    local: tuple[str, int]
    remote: tuple[str, int]
    state: int
    tx_queue: int
    rx_queue: int
    inode: int


def _decode_v4(text: str) -> tuple[str, int]:
    host, port = text.split(":")
    return socket.inet_ntoa(struct.pack("<I", int(host, 16))), int(port, 16)


def tcp_entries(pid: int) -> list[TcpEntry]:
    """IPv4 TCP sockets in the network namespace of `pid` (not only those it owns)."""
    entries = []
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except (FileNotFoundError, ProcessLookupError):
        return []
    for line in lines:
        cols = line.split()
        tx, rx = cols[4].split(":")
        entries.append(TcpEntry(_decode_v4(cols[1]), _decode_v4(cols[2]), int(cols[3], 16),
                                int(tx, 16), int(rx, 16), int(cols[9])))
    return entries


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets `pid` holds open."""
    inodes = set()
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for name in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):
                target = os.readlink(f"/proc/{pid}/fd/{name}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def owned_tcp(pid: int) -> list[TcpEntry]:
    """The IPv4 TCP sockets that `pid` itself holds."""
    mine = socket_inodes(pid)
    return [e for e in tcp_entries(pid) if e.inode in mine]


def wait_listening(pid: int, port: int, timeout: float = 15.0) -> None:
    """Wait until `pid` holds a socket listening on `port`."""
    wait_for(lambda: any(e.state == _TCP_LISTEN and e.local[1] == port for e in owned_tcp(pid)),
             timeout, f"pid {pid} to listen on port {port}")


def accepted_entry(pid: int, port: int, peer_port: int | None = None) -> TcpEntry | None:
    """`pid`'s established socket with local `port` (and remote `peer_port` if given)."""
    for e in owned_tcp(pid):
        if (e.state == _TCP_ESTABLISHED and e.local[1] == port
                and (peer_port is None or e.remote[1] == peer_port)):
            return e
    return None


def wait_accepted(pid: int, port: int, peer_port: int | None = None,
                  timeout: float = 15.0) -> TcpEntry:
    """Wait until `pid` has accepted (holds) the connection to its `port` from `peer_port`."""
    return wait_for(lambda: accepted_entry(pid, port, peer_port), timeout,
                    f"pid {pid} to accept on port {port} from {peer_port}")


def listen_backlog(pid: int, port: int) -> int | None:
    """Connections waiting to be accepted on `port` in `pid`'s namespace (None: no listener).

    Ports in tests are allocated per test, so the listener is `pid`'s; not checking
    ownership keeps this cheap enough to poll once per connect cycle."""
    for e in tcp_entries(pid):
        if e.state == _TCP_LISTEN and e.local[1] == port:
            return e.rx_queue
    return None


def rx_queue(pid: int, port: int, peer_port: int) -> int | None:
    """Bytes waiting unread in `pid`'s socket on `port` from `peer_port` (None: no socket)."""
    entry = accepted_entry(pid, port, peer_port)
    return None if entry is None else entry.rx_queue


def unsent_bytes(sock: socket.socket) -> int:
    """Bytes in our send queue not yet acknowledged by the peer's kernel (SIOCOUTQ)."""
    import fcntl

    buf = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0")
    return struct.unpack("i", buf)[0]


@dataclass(frozen=True)
class ForeignSocket:
    """A TCP socket of another process, seen through a duplicate of its descriptor."""

    fd: int
    local: tuple[str, int]
    remote: tuple[str, int] | None
    listening: bool
    nodelay: bool


def foreign_tcp_sockets(pid: int) -> list[ForeignSocket]:
    """Every IPv4/IPv6 TCP socket `pid` holds, with its options read by getsockopt.

    The descriptors are duplicated into this process with pidfd_getfd(2) (root, Linux
    5.6+), so the options are the real ones, not inferred from the outside.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(_SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), f"pidfd_open({pid})")
    found = []
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                    continue
            dup = libc.syscall(_SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if dup < 0:
                continue
            sock = socket.socket(fileno=dup)
            try:
                if sock.family not in (socket.AF_INET, socket.AF_INET6) or \
                        sock.type != socket.SOCK_STREAM:
                    continue
                listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
                try:
                    remote = sock.getpeername()[:2]
                except OSError:
                    remote = None
                found.append(ForeignSocket(
                    int(name), sock.getsockname()[:2], remote, listening,
                    bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))))
            finally:
                sock.close()
    finally:
        os.close(pidfd)
    return found


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"pid {pid} has exited (no VmRSS)")


# --- the stream wire format --------------------------------------------------------------

class RecordReader:
    """Incremental reassembly of BE32 length-prefixed records (the test peer's side)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the records they completed (also appended to `frames`)."""
        self._buf += data
        done = []
        pos = 0
        buf = self._buf
        while len(buf) - pos >= 4:
            (length,) = HEADER.unpack_from(buf, pos)
            if len(buf) - pos - 4 < length:
                break
            done.append(bytes(buf[pos + 4:pos + 4 + length]))
            pos += 4 + length
        del buf[:pos]
        self.frames.extend(done)
        return done

    @property
    def pending(self) -> int:
        """Bytes of an incomplete record held back."""
        return len(self._buf)


def connect(port: int, host: str = LOOPBACK, timeout: float = 10.0,
            rcvbuf: int | None = None) -> socket.socket:
    """A TCP client with TCP_NODELAY (so chunks go out as written), blocking mode.

    `rcvbuf` shrinks the receive buffer (and so the window the peer may fill) before
    connecting, which makes a slow reader felt at once instead of after megabytes.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the peer sends until it closes (EOF or reset); TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"peer did not close within {timeout}s ({len(data)} bytes read)")
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


@dataclass
class Sender:
    """Bytes to write on one socket, one chunk per send(); `barrier` gates the next chunk."""

    chunks: list[bytes]
    barrier: Callable[[], bool] | None = None
    index: int = 0
    offset: int = 0
    waiting: bool = field(default=False)

    @property
    def done(self) -> bool:
        return self.index >= len(self.chunks) and not self.waiting


def pump(
    sends: Mapping[socket.socket, bytes | Sequence[bytes]],
    expect: Mapping[socket.socket, int],
    timeout: float = 30.0,
    readers: Mapping[socket.socket, RecordReader] | None = None,
    barriers: Mapping[socket.socket, Callable[[], bool]] | None = None,
    read_size: int = 1 << 20,
    idle: Callable[[], None] | None = None,
    until: Callable[[], bool] | None = None,
) -> dict[socket.socket, list[bytes]]:
    """Send and receive at once until every socket in `expect` got its count of records.

    `sends` maps a socket to a blob or to a list of chunks (one send() each, in order); a
    barrier for that socket must hold before the next chunk goes (e.g. "the relay has
    read everything so far"), so chunk boundaries reach the relay's recv() as chunks.
    Reading continues all the while, so the relay is never stalled by the test itself.
    `until`, if given, replaces the record counts as the completion test.
    Returns the records read per socket (the readers' `frames`).
    """
    senders = {}
    for sock, data in sends.items():
        chunks = [data] if isinstance(data, bytes | bytearray | memoryview) else list(data)
        senders[sock] = Sender([bytes(c) for c in chunks if len(c)],
                               (barriers or {}).get(sock))
    readers = dict(readers or {})
    for sock in expect:
        readers.setdefault(sock, RecordReader())
    for sock in senders:
        sock.setblocking(False)
    for sock in expect:
        sock.setblocking(False)
    deadline = time.monotonic() + timeout
    try:
        while True:
            received = until() if until is not None else all(
                len(readers[s].frames) >= n for s, n in expect.items())
            if received and all(s.done for s in senders.values()):
                return {s: readers[s].frames for s in expect}
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = {s.getsockname()[1]: len(readers[s].frames) for s in expect}
                want = {s.getsockname()[1]: n for s, n in expect.items()}
                raise TimeoutError(f"pump: records got {got}, wanted {want} within {timeout}s")
            for snd in senders.values():
                if snd.waiting and (snd.barrier is None or snd.barrier()):
                    snd.waiting = False
            wlist = [s for s, snd in senders.items()
                     if snd.index < len(snd.chunks) and not snd.waiting]
            gated = any(snd.waiting for snd in senders.values())
            wait = min(remaining, 0.002 if gated else 0.05)
            rready, wready, _ = select.select(list(expect), wlist, [], wait)
            for sock in rready:
                try:
                    chunk = sock.recv(read_size)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise ConnectionError(
                        f"pump: port {sock.getsockname()[1]} closed by the relay after "
                        f"{len(readers[sock].frames)} records")
                readers[sock].feed(chunk)
            for sock in wready:
                snd = senders[sock]
                chunk = snd.chunks[snd.index]
                try:
                    sent = sock.send(memoryview(chunk)[snd.offset:])
                except BlockingIOError:
                    continue
                snd.offset += sent
                if snd.offset == len(chunk):
                    snd.index += 1
                    snd.offset = 0
                    snd.waiting = snd.barrier is not None
            if idle is not None:
                idle()
    finally:
        for sock in list(senders) + list(expect):
            with contextlib.suppress(OSError):
                sock.setblocking(True)


def relay_drained(pid: int, relay_port: int, client: socket.socket) -> Callable[[], bool]:
    """A barrier: everything `client` sent to `pid`'s `relay_port` has been read by `pid`."""
    peer_port = client.getsockname()[1]

    def drained() -> bool:
        return unsent_bytes(client) == 0 and rx_queue(pid, relay_port, peer_port) == 0

    return drained


# --- processes ---------------------------------------------------------------------------

def _die_with_parent() -> None:
    # A crashed or killed test run must not leave relays or QEMUs behind.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Proc:
    """A child process with stdout/stderr captured to files; always stopped by its PID."""

    def __init__(self, argv: Sequence[str], *, name: str, pass_fds: Sequence[int] = (),
                 cwd: Path | str = REPO, env: Mapping[str, str] | None = None,
                 stdin: Any = subprocess.DEVNULL, stdout: Any = None) -> None:
        """`stdin`/`stdout` as for Popen; stdout None captures it (see `stdout`)."""
        self.name = name
        self.argv = list(argv)
        # Files, not pipes: a chatty child must never block on a full pipe.
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.popen = subprocess.Popen(
            self.argv, stdin=stdin, stdout=self._out if stdout is None else stdout,
            stderr=self._err,
            pass_fds=tuple(pass_fds), cwd=cwd, env=dict(env) if env is not None else None,
            preexec_fn=_die_with_parent)
        self.pid = self.popen.pid

    def _read(self, f: Any) -> str:
        # pread, not seek+read: the child shares this file's offset, and moving it would
        # make the child's next write land over what it already wrote.
        fd = f.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self._read(self._err)

    @property
    def stdout(self) -> str:
        return self._read(self._out)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def wait(self, timeout: float = 10.0) -> int:
        return self.popen.wait(timeout)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal, wait up to `timeout`, then SIGKILL; return the exit status."""
        if self.alive():
            os.kill(self.pid, signum)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait(timeout)

    def close(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(10)
        self._out.close()
        self._err.close()

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}) stderr:\n{self.stderr}"

    @contextlib.contextmanager
    def closed_on_failure(self) -> Iterator[None]:
        """Close this process if the block raises; if it had died, raise why it did."""
        try:
            yield
        except BaseException:
            died = "" if self.alive() else self.describe()
            self.close()
            if died:
                raise RuntimeError(died) from None
            raise


def toynic_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "emu", *args]


def start_toynic(*args: str, pass_fds: Sequence[int] = (), stdin: Any = subprocess.DEVNULL,
                 stdout: Any = None) -> Proc:
    """`python -m emu ARGS` from the repository root."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return Proc(toynic_argv(*args), name="toynic", pass_fds=pass_fds, env=env, stdin=stdin,
                stdout=stdout)


def run_toynic(*args: str, timeout: float = 30.0,
               pass_fds: Sequence[int] = ()) -> subprocess.CompletedProcess[str]:
    """Run toynic to completion (for option errors)."""
    return subprocess.run(toynic_argv(*args), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, pass_fds=tuple(pass_fds), stdin=subprocess.DEVNULL,
                          check=False)


def relay_args(port_a: int, port_b: int, host: str = LOOPBACK) -> list[str]:
    """Two `listen=` stream netdevs joined by two ports of hub 0 (the relay of issue 2)."""
    return ["-netdev", f"socket,id=a,listen={host}:{port_a}",
            "-netdev", f"socket,id=b,listen={host}:{port_b}",
            "-netdev", "hubport,id=p0,hubid=0,netdev=a",
            "-netdev", "hubport,id=p1,hubid=0,netdev=b"]


def hub_args(*netdev_ids: str, hubid: int = 0) -> list[str]:
    """One hub port per netdev id, all on `hubid`."""
    out = []
    for i, nid in enumerate(netdev_ids):
        out += ["-netdev", f"hubport,id=hp{hubid}_{i},hubid={hubid},netdev={nid}"]
    return out


def unavailable(reason: str) -> NoReturn:
    """Skip a test this host cannot run (a tool or a privilege is missing), but fail under
    CI=true: `make test` installs every tool, so CI skipping would hide a test not run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: every test must run)")
    pytest.skip(reason)


def qemu_binary() -> str:
    """Debian's qemu-system-x86_64; skip without it, but fail under CI=true."""
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        unavailable("qemu-system-x86_64 is not installed")
    return path


class QmpClient:
    """QMP over a connected socket: greeting, capabilities, then id-matched commands."""

    def __init__(self, sock: socket.socket, describe: Callable[[], str] = lambda: "") -> None:
        self.sock = sock
        self._describe = describe
        self._buf = b""
        self._next_id = 0
        self._message()
        self.execute("qmp_capabilities")

    def _message(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"QMP closed: {self._describe()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        """Run a QMP command; return its "return" value (RuntimeError on "error")."""
        self._next_id += 1
        msg: dict[str, Any] = {"execute": command, "id": self._next_id}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._message()
            # Events, and the second greeting QEMU sends when a client connects while
            # its monitor is still being set up, carry no id: they are not our answer.
            if reply.get("id") != self._next_id:
                continue
            if "error" in reply:
                raise RuntimeError(f"QMP {command}: {reply['error']}")
            if "return" not in reply:
                raise RuntimeError(f"QMP {command}: unexpected reply {reply!r}")
            return reply["return"]

    def close(self) -> None:
        self.sock.close()


class Qemu(Proc):
    """`qemu-system-x86_64 -nodefaults -display none -machine none` plus a QMP socket."""

    def __init__(self, *args: str, binary: str, workdir: Path,
                 pass_fds: Sequence[int] = ()) -> None:
        self.qmp_path = workdir / f"qmp-{os.getpid()}-{time.monotonic_ns()}.sock"
        argv = [binary, "-nodefaults", "-display", "none", "-machine", "none",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off", *args]
        super().__init__(argv, name="qemu", pass_fds=pass_fds)
        self._qmp: QmpClient | None = None

    def _qmp_connect(self) -> QmpClient:
        def attempt() -> socket.socket | None:
            if not self.alive():
                raise RuntimeError(f"QEMU exited early: {self.describe()}")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.qmp_path))
            except OSError:
                s.close()
                return None
            return s

        sock = wait_for(attempt, 15.0, "QEMU's QMP socket")
        sock.settimeout(15.0)
        try:
            return QmpClient(sock, self.describe)
        except BaseException:
            sock.close()
            raise

    def qmp(self, command: str, **arguments: Any) -> Any:
        """Run a QMP command; return its "return" value (RuntimeError on "error")."""
        if self._qmp is None:
            self._qmp = self._qmp_connect()
        return self._qmp.execute(command, **arguments)

    def hmp(self, command_line: str) -> str:
        return self.qmp("human-monitor-command", **{"command-line": command_line})

    def wait_ready(self) -> None:
        """QEMU answers QMP only once every netdev has been set up."""
        self.qmp("query-status")

    def close(self) -> None:
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
        super().close()
        with contextlib.suppress(FileNotFoundError):
            self.qmp_path.unlink()


def start_qemu(*args: str, workdir: Path, pass_fds: Sequence[int] = ()) -> Qemu:
    """Start QEMU with the given netdev arguments and wait until it is ready."""
    q = Qemu(*args, binary=qemu_binary(), workdir=workdir, pass_fds=pass_fds)
    try:
        q.wait_ready()
    except BaseException:
        q.close()
        raise
    return q


# --- network namespaces ------------------------------------------------------------------

class NetnsUnavailable(RuntimeError):
    """This host cannot give the test a private network namespace."""


def _enter_fresh_netns() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        raise NetnsUnavailable(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
    ip = shutil.which("ip")
    if ip is None:
        raise NetnsUnavailable("the ip command (iproute2) is missing")
    for cmd in (["link", "set", "lo", "up"], ["link", "set", "lo", "multicast", "on"],
                ["route", "add", "224.0.0.0/4", "dev", "lo"]):
        subprocess.run([ip, *cmd], check=True, capture_output=True)


def _child_raise(exc: BaseException) -> bytes:
    text = "".join(traceback.format_exception(exc))
    try:
        return pickle.dumps(("err", exc, text))
    except Exception:
        return pickle.dumps(("err", RuntimeError(repr(exc)), text))


def in_netns(fn: Callable[..., T], *args: Any, timeout: float = 60.0) -> T:
    """Run `fn(*args)` in a forked child inside a fresh network namespace; return its result.

    The namespace has only `lo`, up, with 224.0.0.0/4 routed to it, so multicast stays
    inside. Processes that `fn` starts inherit the namespace. Exceptions (including
    pytest outcomes) come back to the caller with the child's traceback attached.
    """
    if os.geteuid() != 0:
        unavailable("network namespaces need root")
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        os.close(rfd)
        status = 0
        try:
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            _enter_fresh_netns()
            payload = pickle.dumps(("ok", fn(*args), ""))
        except BaseException as exc:
            payload = _child_raise(exc)
            status = 1
        try:
            with os.fdopen(wfd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(status)
    os.close(wfd)
    data = bytearray()
    deadline = time.monotonic() + timeout
    try:
        with os.fdopen(rfd, "rb", buffering=0) as pipe:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"in_netns: {fn.__name__} did not finish in {timeout}s")
                ready, _, _ = select.select([pipe], [], [], remaining)
                if ready:
                    chunk = pipe.read(65536)
                    if not chunk:
                        break
                    data += chunk
    finally:
        _reap(pid)
    if not data:
        raise RuntimeError(f"in_netns: child for {fn.__name__} died without a result")
    kind, value, text = pickle.loads(bytes(data))
    if kind == "ok":
        return value
    if isinstance(value, NetnsUnavailable):
        unavailable(str(value))
    if isinstance(value, BaseException):
        value.add_note(f"--- raised inside the network namespace ---\n{text}")
        raise value
    raise RuntimeError(text)


def _reap(pid: int) -> None:
    """Collect the netns child; interrupt it (so its cleanups run), then kill it."""
    pidfd = os.pidfd_open(pid)
    try:
        for signum, grace in ((None, 5.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            if signum is not None:
                signal.pidfd_send_signal(pidfd, signum)
            # A pidfd turns readable when its process exits.
            if select.select([pidfd], [], [], grace)[0]:
                os.waitpid(pid, 0)
                return
    finally:
        os.close(pidfd)


def is_conn_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (
        errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)
