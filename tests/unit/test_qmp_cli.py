"""`-qmp` on each chardev QEMU spells for it (QEMU: monitor/qmp.c over chardev/), driven by
the QEMU project's client library `qemu.qmp`, with the same code against Debian's QEMU 7.2:

- `-qmp stdio`: the client talks over the process's stdin and stdout (one end of a
  socketpair handed to the process as both);
- `-qmp tcp:127.0.0.1:PORT,server,nowait`;

each gets the greeting, runs `query-status`, and `quit` ends the process with status 0
after a SHUTDOWN event. Then `-qmp` user errors: one line on stderr, exit status 1.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator

import pytest
from qemu.qmp import legacy as qmp_legacy

from tests.netsupport import (
    LOOPBACK,
    Proc,
    free_port,
    run_toynic,
    toynic_argv,
    unavailable,
    wait_for,
)

TIMEOUT = 15.0


def argv(program: str, qmp: str) -> list[str]:
    if program == "toynic":
        return toynic_argv("-qmp", qmp)
    binary = shutil.which("qemu-system-x86_64")
    if binary is None:
        unavailable("qemu-system-x86_64 is not installed")
    return [binary, "-nodefaults", "-display", "none", "-machine", "none", "-qmp", qmp]


@contextlib.contextmanager
def on_stdio(program: str) -> Iterator[tuple[Proc, qmp_legacy.QEMUMonitorProtocol]]:
    ours, theirs = socket.socketpair()
    with ours:
        with theirs:
            proc = Proc(argv(program, "stdio"), name=program, stdin=theirs, stdout=theirs)
        with proc:
            client = qmp_legacy.QEMUMonitorProtocol(ours)
            yield proc, client


@contextlib.contextmanager
def on_tcp(program: str) -> Iterator[tuple[Proc, qmp_legacy.QEMUMonitorProtocol]]:
    port = free_port()
    with Proc(argv(program, f"tcp:{LOOPBACK}:{port},server,nowait"), name=program) as proc:
        def connected() -> qmp_legacy.QEMUMonitorProtocol | None:
            if not proc.alive():
                raise RuntimeError(f"exited early: {proc.describe()}")
            try:
                with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as probe:
                    probe.recv(1)  # the greeting: the server is up and serving
            except OSError:
                return None
            return qmp_legacy.QEMUMonitorProtocol((LOOPBACK, port))

        yield proc, wait_for(connected, TIMEOUT, f"QMP on port {port}")


@pytest.mark.parametrize("program", ["toynic", "qemu"])
@pytest.mark.parametrize("chardev", [on_stdio, on_tcp], ids=["stdio", "tcp"])
def test_greeting_query_status_and_quit(chardev: object, program: str) -> None:
    with chardev(program) as (proc, client):  # type: ignore[operator]
        greeting = client.connect(negotiate=True)
        client.settimeout(TIMEOUT)
        version = greeting["QMP"]["version"]["qemu"]
        assert (version["major"], version["minor"]) == (7, 2)
        status = client.cmd("query-status")
        assert status["status"] == "running" and status["running"] is True
        assert client.cmd("quit") == {}
        event = client.pull_event(wait=TIMEOUT)
        assert event is not None and event["event"] == "SHUTDOWN", event
        with contextlib.suppress(EOFError, OSError):
            client.close()
        assert proc.wait(TIMEOUT) == 0, proc.describe()


@pytest.mark.parametrize(("qmp", "message"), [
    ("bogus", "bogus: chardev 'bogus' is not supported (stdio, unix:, tcp:)"),
    ("unix:", "unix:: only server mode is supported (add ',server,nowait')"),
    ("unix:,server,nowait", "unix:,server,nowait: unix: needs a socket path"),
    ("unix:/nonexistent/dir/qmp.sock,server,nowait",
     "unix: Failed to bind socket to unix:/nonexistent/dir/qmp.sock,server=on: "
     "No such file or directory"),
    ("tcp:127.0.0.1,server,nowait", "tcp:127.0.0.1,server,nowait: host address '127.0.0.1' "
     "doesn't contain ':' separating host from port"),
    ("tcp:127.0.0.1:65536,server,nowait",
     "tcp:127.0.0.1:65536,server,nowait: port number '65536' is out of range (0..65535)"),
    ("stdio,server", "stdio,server: 'stdio' takes no options"),
    ("unix:/tmp/q.sock,server,nowait,colour=red",
     "unix:/tmp/q.sock,server,nowait,colour=red: Parameter 'colour' is unexpected"),
])
def test_qmp_user_errors_are_one_line_and_status_1(qmp: str, message: str) -> None:
    done = run_toynic("-qmp", qmp)
    assert (done.returncode, done.stderr) == (1, f"toynic: -qmp {message}\n")


def test_qmp_and_monitor_both_on_stdio_is_one_line() -> None:
    done = run_toynic("-monitor", "stdio", "-qmp", "stdio")
    assert (done.returncode, done.stderr) == (
        1, "toynic: -qmp stdio: stdio is already the -monitor's\n")


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_toynic("-qmp", f"tcp:{LOOPBACK}:{port},server,nowait")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("toynic: -qmp tcp: ") and "in use" in done.stderr, done.stderr
