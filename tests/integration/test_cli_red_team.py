"""Malformed command lines from the red-team run of issue 9 (items 5, 9, 11, 13, 14): the
real `toynic` process answers each with exit status 1 and exactly one line on stderr
starting `toynic:`, never a traceback.

Arguments may be bytes (non-UTF-8 text reaches Python as surrogate escapes); `{tmp}`
and `{port}` in an argument are filled in per test.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from emu.board.layout import RAM_BASE
from emu.board.loader import build_elf
from tests.netsupport import LOOPBACK, REPO, Proc, free_port, start_toynic, toynic_argv, wait_for

# A valid kernel of 16 KiB (none of these runs reaches its first instruction).
KERNEL = build_elf(RAM_BASE, [(RAM_BASE, bytes(16 << 10))])
DIGITS = "9" * 5000
LABEL64 = "a" * 64
BAD_HOSTS = ["a..b", ".", LABEL64]
Arg = str | bytes


def run_bytes(args: list[Arg], pass_fds: tuple[int, ...] = ()) -> tuple[int, str]:
    """Run toynic to completion; (exit status, stderr decoded without failing)."""
    result = subprocess.run(toynic_argv(*args), cwd=REPO, capture_output=True,  # type: ignore[arg-type]
                            stdin=subprocess.DEVNULL, timeout=20, pass_fds=pass_fds, check=False)
    return result.returncode, result.stderr.decode(errors="replace")


def assert_one_line_error(status: int, stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert status == 1, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("toynic:"), stderr
    return lines[0]


def fill(arg: Arg, tmp: Path, port: int) -> Arg:
    if isinstance(arg, bytes):
        return arg.replace(b"{tmp}", os.fsencode(tmp))
    return arg.format(tmp=tmp, port=port)


CASES: list[tuple[str, list[Arg], str]] = [
    # item 9: values that used to raise ValueError/OverflowError/UnicodeError
    ("m-nan", ["-m", "nan"], "invalid size"),
    ("m-inf", ["-m", "inf"], "invalid size"),
    ("m-1e400", ["-m", "1e400"], "invalid size"),
    ("m-5000-digits", ["-m", DIGITS], "too large"),
    ("listen-5000-digit-port", ["-netdev", f"socket,id=a,listen={LOOPBACK}:{DIGITS}"],
     "out of range"),
    ("connect-5000-digit-port", ["-netdev", f"socket,id=a,connect={LOOPBACK}:{DIGITS}"],
     "out of range"),
    ("monitor-5000-digit-port", ["-monitor", f"tcp:{LOOPBACK}:{DIGITS},server,nowait"],
     "out of range"),
    ("fd-too-large", ["-netdev", "socket,id=a,fd=99999999999"], "file descriptor"),
    *[(f"listen-host-{i}", ["-netdev", f"socket,id=a,listen={host}:1"], "not a valid host name")
      for i, host in enumerate(BAD_HOSTS)],
    *[(f"connect-host-{i}", ["-netdev", f"socket,id=a,connect={host}:1"],
       "not a valid host name") for i, host in enumerate(BAD_HOSTS)],
    *[(f"monitor-host-{i}", ["-monitor", f"tcp:{host}:1,server,nowait"], "not a valid host name")
      for i, host in enumerate(BAD_HOSTS)],
    ("append-not-utf8", ["-kernel", "{tmp}/kernel.elf", "-append", b"ip=10.0.0.1 \xff\xfe"],
     "UTF-8"),
    ("kernel-path-not-utf8", ["-kernel", b"{tmp}/KERNEL-\xff.elf"], "UTF-8"),
    # item 5: toynic's own descriptors (epoll, the loop's wakeup socketpair)
    *[(f"own-fd-{fd}", ["-netdev", f"socket,id=a,fd={fd}"], f"fd={fd}") for fd in (3, 4, 5)],
    # item 11: hub ports that would make a frame circle forever
    ("hubport-on-its-own-hub", ["-netdev", "hubport,id=h0,hubid=0",
                                "-netdev", "hubport,id=h1,hubid=0,netdev=h0"], "loop"),
    ("hub-cycle-of-two", ["-netdev", "hubport,id=h0,hubid=0",
                          "-netdev", "hubport,id=h1,hubid=1,netdev=h0",
                          "-netdev", "hubport,id=h2,hubid=1",
                          "-netdev", "hubport,id=h3,hubid=0,netdev=h2"], "loop"),
    ("hub-cycle-of-three", ["-netdev", "hubport,id=a0,hubid=0",
                            "-netdev", "hubport,id=b0,hubid=1,netdev=a0",
                            "-netdev", "hubport,id=b1,hubid=1",
                            "-netdev", "hubport,id=c0,hubid=2,netdev=b1",
                            "-netdev", "hubport,id=c1,hubid=2",
                            "-netdev", "hubport,id=a1,hubid=0,netdev=c1"], "loop"),
    ("hubport-peers-itself", ["-netdev", "hubport,id=h0,hubid=0,netdev=h0"], "h0"),
    # item 13: kernels that are not regular files
    ("kernel-dev-zero", ["-kernel", "/dev/zero"], "not a regular file"),
    ("kernel-fifo", ["-kernel", "{tmp}/fifo"], "not a regular file"),
    ("kernel-too-large", ["-kernel", "{tmp}/huge.elf"], "limit is 64 MiB"),
    # item 14: accepted before, refused now
    ("empty-netdev-id", ["-netdev", f"socket,id=,listen={LOOPBACK}:{{port}}"], "identifier"),
    ("netdev-id-with-space", ["-netdev", f"socket,id=a b,listen={LOOPBACK}:{{port}}"],
     "identifier"),
    ("netdev-id-digit-first", ["-netdev", "hubport,id=1a,hubid=0"], "identifier"),
    ("netdev-id-with-bang", ["-netdev", "hubport,id=a!,hubid=0"], "identifier"),
    ("netdev-id-with-comma", ["-netdev", "hubport,id=a,,b,hubid=0"], "identifier"),
    ("device-id", ["-kernel", "{tmp}/kernel.elf", "-netdev", "hubport,id=n0,hubid=0",
                   "-device", "ne2k_isa,netdev=n0,id=x y"], "identifier"),
    ("object-id", ["-netdev", "hubport,id=n0,hubid=0",
                   "-object", "filter-dump,id=9d,netdev=n0,file={tmp}/d.pcap"], "identifier"),
    ("duplicate-device-id", ["-kernel", "{tmp}/kernel.elf", "-device", "ne2k_isa,id=x",
                             "-device", "ne2k_isa,id=x,iobase=0x320"], "Duplicate ID 'x'"),
    ("append-without-kernel", ["-append", "ip=10.0.0.1"], "only allowed with -kernel"),
    ("m-without-kernel", ["-m", "16M"], "only allowed with -kernel"),
    ("icount-without-kernel", ["-icount", "shift=1"], "only allowed with -kernel"),
    ("m-4B-is-4-bytes", ["-kernel", "{tmp}/kernel.elf", "-m", "4B"], "outside RAM"),
    ("m-two-letter-suffix", ["-m", "16MB"], "invalid size"),
    ("m-zero", ["-m", "0"], "invalid size"),
]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A kernel, the same under a name that is not UTF-8, one over the size limit (sparse)
    and a FIFO."""
    (tmp_path / "kernel.elf").write_bytes(KERNEL)
    Path(os.fsdecode(os.fsencode(tmp_path) + b"/KERNEL-\xff.elf")).write_bytes(KERNEL)
    with open(tmp_path / "huge.elf", "wb") as f:
        f.truncate((64 << 20) + 1)
    os.mkfifo(tmp_path / "fifo")
    return tmp_path


@pytest.mark.parametrize(("args", "fragment"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_malformed_command_line_is_one_line_and_status_1(
        workdir: Path, args: list[Arg], fragment: str) -> None:
    filled = [fill(arg, workdir, free_port()) for arg in args]
    line = assert_one_line_error(*run_bytes(filled))
    assert fragment in line, line


def test_listening_socket_as_fd_is_refused() -> None:
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(1)
        fd = listener.fileno()
        line = assert_one_line_error(*run_bytes(["-netdev", f"socket,id=a,fd={fd}"],
                                                pass_fds=(fd,)))
        assert f"fd={fd} is a listening socket" in line


def wait_stderr(proc: Proc, predicate: Callable[[str], bool]) -> str:
    wait_for(lambda: predicate(proc.stderr) or not proc.alive(), timeout=30,
             what="toynic's stderr")
    return proc.stderr


def test_refused_connect_on_loopback_leaves_the_link_down_and_says_why() -> None:
    """Quirk Q3: even on loopback the refusal arrives after startup; toynic reports it in
    one line and keeps running (the relay's other netdevs still work) until a signal."""
    closed = free_port()
    proc = start_toynic("-netdev", f"socket,id=a,connect={LOOPBACK}:{closed}",
                        "-netdev", "hubport,id=h0,hubid=0,netdev=a",
                        "-netdev", f"socket,id=b,listen={LOOPBACK}:{free_port()}",
                        "-netdev", "hubport,id=h1,hubid=0,netdev=b")
    with proc:
        stderr = wait_stderr(proc, lambda text: "failed" in text)
        assert proc.alive(), stderr
        assert f"toynic: netdev a: connect to {LOOPBACK}:{closed} failed: Connection refused" \
            in stderr.splitlines()
        assert proc.stop() == 0
        assert "Traceback" not in proc.stderr
