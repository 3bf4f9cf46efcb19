"""A burst of SIGTERM and SIGINT while toynic shuts down: the first signal ends the run,
the rest arrive during the teardown (or fill the signal wakeup pipe). Whatever the
timing, the exit is quiet: status 0, nothing on stderr but the startup warning, and no
hang (a signal handler that wrote to a closed wakeup fd could deadlock CPython)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.netsupport import free_ports, relay_args, start_toynic, wait_listening

pytestmark = pytest.mark.timeout(180)

TRIALS = 4
MAX_SIGNALS = 50_000


def signal_burst_until_exit(proc) -> int:
    """Alternate SIGTERM and SIGINT as fast as possible until the process has exited;
    returns how many were sent."""
    deadline = time.monotonic() + 30
    sent = 0
    while sent < MAX_SIGNALS and proc.alive() and time.monotonic() < deadline:
        proc.send_signal(signal.SIGTERM if sent % 2 == 0 else signal.SIGINT)
        sent += 1
    return sent


@pytest.mark.parametrize("trial", range(TRIALS))
def test_signals_during_shutdown_leave_stderr_clean_and_status_zero(trial: int) -> None:
    ports = free_ports(2)
    with start_toynic(*relay_args(*ports)) as proc:
        for port in ports:
            wait_listening(proc.pid, port)
        assert signal_burst_until_exit(proc) > 0
        assert proc.wait(20) == 0, proc.describe()
        noise = [line for line in proc.stderr.splitlines()
                 if not line.startswith("toynic: warning: ")]
        assert noise == [], proc.describe()
