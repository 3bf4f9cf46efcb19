"""A tap's down script that does not finish (QEMU's launch_script waits for it forever):
toynic's teardown blocks SIGINT and SIGTERM, so before this fix nothing but SIGKILL ended
a toynic waiting for it. Now a stop signal that comes while the down script runs kills the
script, is reported in one line, and toynic exits. Runs in a test-made network namespace."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.netsupport import in_netns, toynic_argv, wait_for

REPO = Path(__file__).resolve().parents[2]
HELLO = str(REPO / "emu/guests/hello.elf")


def _stop_during_downscript(workdir: str, signum: int) -> tuple[int | None, str, bool, float]:
    down = Path(workdir) / "down"
    pidfile = Path(workdir) / "down.pid"
    down.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    down.chmod(0o755)
    toynic = subprocess.Popen(
        toynic_argv("-kernel", HELLO, "-netdev",
                    f"tap,id=n0,ifname=tdown0,script=no,downscript={down}",
                    "-device", "ne2k_isa,netdev=n0"),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # hello.elf powers off at once: toynic is in its teardown, running the down script.
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
                 "the down script to start")
        script_pid = int(pidfile.read_text())
        toynic.send_signal(signum)
        started = time.monotonic()
        try:
            status: int | None = toynic.wait(10)
        except subprocess.TimeoutExpired:
            status = None
        waited = time.monotonic() - started
        # toynic reaps the script it killed, so nothing is left under /proc.
        script_alive = Path(f"/proc/{script_pid}").exists()
    finally:
        if toynic.poll() is None:
            toynic.kill()
            toynic.wait()
    return status, toynic.stderr.read() if toynic.stderr else "", script_alive, waited


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_a_hung_downscript(tmp_path: Path, signum: int) -> None:
    status, stderr, script_alive, _ = in_netns(_stop_during_downscript, str(tmp_path),
                                               int(signum))
    assert status is not None, "toynic still waited for its down script 10 s after the signal"
    assert status == 0  # the guest's status: hello.elf powered off with 0
    assert stderr == (f"toynic: netdev n0: network script {tmp_path}/down killed: toynic was "
                      "told to stop while it ran\n")
    assert not script_alive
