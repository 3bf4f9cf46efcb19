"""QMP `stop`/`cont` (QEMU: qmp_stop/qmp_cont in qapi/misc.json, vm_stop/vm_start) driven
by the QEMU project's `qemu.qmp` client, with the same code against toynic running a
guest and against Debian's QEMU 7.2: STOP and RESUME events, `query-status` paused and
running, HMP's `info status` through `human-monitor-command`. Then, toynic only: a
paused guest prints nothing while the monitor goes on answering, prints again after
`cont`, and a paused toynic ends on SIGTERM with status 0."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from qemu.qmp import legacy as qmp_legacy

from tests.interop.qmpsession import qmp_session
from tests.netsupport import REPO, Proc, Qemu, qemu_binary, start_toynic, wait_for

TIMEOUT = 15.0
ROUND_TRIPS = 20
# A counter: a line per millisecond of virtual time, for far longer than a test runs.
COUNTER = ["-kernel", str(REPO / "emu/guests/timer.elf"), "-append", "ticks=1000000 period=1"]


@dataclass
class Target:
    name: str
    proc: Proc
    qmp: qmp_legacy.QEMUMonitorProtocol


@pytest.fixture(params=["toynic", "qemu"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    qmp_path = tmp_path / "qmp.sock"
    qmp_arg = f"unix:{qmp_path},server=on,wait=off"
    if request.param == "toynic":
        proc: Proc = start_toynic("-qmp", qmp_arg, *COUNTER)
    else:
        proc = Qemu("-qmp", qmp_arg, binary=qemu_binary(), workdir=tmp_path)
    with qmp_session(proc, qmp_path, TIMEOUT) as (client, _):
        yield Target(request.param, proc, client)


def hmp(target: Target, line: str) -> str:
    return target.qmp.cmd("human-monitor-command", **{"command-line": line})


def next_event(target: Target) -> dict:
    event = target.qmp.pull_event(wait=TIMEOUT)
    assert event is not None
    assert set(event["timestamp"]) == {"seconds", "microseconds"}
    return event


def test_stop_and_cont_events_and_status(target: Target) -> None:
    assert target.qmp.cmd("stop") == {}
    assert next_event(target)["event"] == "STOP"
    assert target.qmp.cmd("query-status") == {"status": "paused", "singlestep": False,
                                              "running": False}
    assert hmp(target, "info status") == "VM status: paused\r\n"
    assert target.qmp.cmd("stop") == {}          # already stopped: no event
    assert target.qmp.cmd("cont") == {}
    assert next_event(target)["event"] == "RESUME"
    assert target.qmp.cmd("query-status")["status"] == "running"
    assert hmp(target, "info status") == "VM status: running\r\n"
    assert target.qmp.cmd("cont") == {}          # already running: no event
    hmp(target, "stop")                          # the human monitor's stop is an event too
    assert next_event(target)["event"] == "STOP"
    assert target.qmp.get_events() == []


def ticks(proc: Proc) -> int:
    found = re.findall(r"timer: tick (\d+)/", proc.stdout)
    return int(found[-1]) if found else 0


@pytest.mark.parametrize("target", ["toynic"], indirect=True)
def test_a_paused_guest_prints_nothing_and_ends_on_sigterm(target: Target) -> None:
    wait_for(lambda: ticks(target.proc) >= 5, TIMEOUT, "the guest's first ticks")
    target.qmp.cmd("stop")
    # One round trip after the stop: output the last slice made has reached stdout.
    target.qmp.cmd("query-status")
    printed = len(target.proc.stdout)
    for _ in range(ROUND_TRIPS):
        assert target.qmp.cmd("query-status")["running"] is False
    assert len(target.proc.stdout) == printed
    paused_at = ticks(target.proc)
    target.qmp.cmd("cont")
    wait_for(lambda: ticks(target.proc) > paused_at + 5, TIMEOUT, "ticks after cont")
    target.qmp.cmd("stop")
    target.proc.send_signal(signal.SIGTERM)
    assert target.proc.wait(TIMEOUT) == 0
