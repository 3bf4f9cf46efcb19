"""accept() failing with EMFILE: toynic stops polling the listening socket, says so once
and retries on a timer, for the netdev `listen=` socket and the monitor's server socket.

The descriptor limit of the running toynic is lowered with prlimit(2) to its lowest free
descriptor number, so the very next descriptor it opens (the accepted connection) fails
with EMFILE; the pending connection stays in the kernel's backlog and keeps the listening
socket readable, which is what made the old code spin. The assertions are on resources:
the CPU time the process uses over an observation window (a spinning loop uses about all
of it) and how many report lines it printed; then the limit is restored and the waiting
connection must be accepted.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netsupport import (
    LOOPBACK,
    Proc,
    connect,
    free_ports,
    start_toynic,
    wait_accepted,
    wait_for,
    wait_listening,
)

pytestmark = pytest.mark.timeout(120)

EMFILE_TEXT = os.strerror(24)  # "Too many open files"
WINDOW = 2.0  # seconds of observation; the assertion is on CPU time, not on this
CPU_BUDGET = 0.5  # seconds of CPU the process may use in the window (spinning: ~WINDOW)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lowest_free_fd(pid: int) -> int:
    used = {int(name) for name in os.listdir(f"/proc/{pid}/fd")}
    return min(set(range(len(used) + 1)) - used)


@contextlib.contextmanager
def starved(pid: int) -> Iterator[None]:
    """The process cannot open one more descriptor until the block ends."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free_fd(pid), hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))


def reports(proc: Proc) -> int:
    return sum(EMFILE_TEXT in line for line in proc.stderr.splitlines())


def assert_backs_off(proc: Proc) -> None:
    """One report line, and the process stays (nearly) idle for WINDOW seconds."""
    wait_for(lambda: reports(proc) or not proc.alive(), 15, "the accept failure report")
    assert proc.alive(), proc.describe()
    before = cpu_seconds(proc.pid)
    with contextlib.suppress(TimeoutError):  # reaching the end of the window is success
        wait_for(lambda: reports(proc) > 1, WINDOW, "a second report", interval=0.05)
    used = cpu_seconds(proc.pid) - before
    assert reports(proc) == 1, proc.describe()[:2000]
    assert used < CPU_BUDGET, f"{used:.2f} s of CPU in a {WINDOW} s window: spinning"


def test_netdev_listen_backs_off_on_emfile_and_accepts_when_fds_are_back() -> None:
    port, = free_ports(1)
    with start_toynic("-netdev", f"socket,id=a,listen={LOOPBACK}:{port}",
                      "-netdev", "hubport,id=h0,hubid=0,netdev=a") as proc:
        wait_listening(proc.pid, port)
        with contextlib.ExitStack() as stack:
            with starved(proc.pid):
                client = stack.enter_context(connect(port))
                assert_backs_off(proc)
            wait_accepted(proc.pid, port, client.getsockname()[1])
        assert proc.stop() == 0
        assert reports(proc) == 1 and "Traceback" not in proc.stderr


def test_monitor_server_backs_off_on_emfile_and_serves_when_fds_are_back() -> None:
    mon_port, = free_ports(1)
    with start_toynic("-netdev", "hubport,id=h0,hubid=0",
                      "-monitor", f"tcp:{LOOPBACK}:{mon_port},server,nowait") as proc:
        wait_listening(proc.pid, mon_port)
        with contextlib.ExitStack() as stack:
            with starved(proc.pid):
                client = stack.enter_context(
                    socket.create_connection((LOOPBACK, mon_port), timeout=15))
                assert_backs_off(proc)
            banner = b""
            while b"(toynic) " not in banner:
                chunk = client.recv(4096)
                assert chunk, f"monitor closed: {banner!r}"
                banner += chunk
            assert b"toynic monitor" in banner
        assert proc.stop() == 0
        assert reports(proc) == 1 and "Traceback" not in proc.stderr
