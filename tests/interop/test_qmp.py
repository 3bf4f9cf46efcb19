"""`-qmp` driven by the QEMU project's own client library, `qemu.qmp` (its synchronous
`legacy.QEMUMonitorProtocol`), against toynic and, with the same test code, against
Debian's QEMU 7.2 (QEMU: monitor/qmp.c, qapi/net.json's events). Each process has a
`-netdev stream` server on a unix socket, so a test can connect a peer and see
NETDEV_STREAM_CONNECTED / _DISCONNECTED arrive."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from qemu.qmp import legacy as qmp_legacy

from tests.interop.qmpsession import qmp_session
from tests.netsupport import Proc, Qemu, qemu_binary, start_toynic, unix_connect, wait_for

TIMEOUT = 15.0


@dataclass
class Target:
    """A process under test, its QMP client (negotiated) and its stream server's path."""

    name: str
    proc: Proc
    qmp: qmp_legacy.QEMUMonitorProtocol
    greeting: dict
    stream_path: Path


def _start(name: str, tmp_path: Path) -> tuple[Proc, Path]:
    qmp_path = tmp_path / f"{name}-qmp.sock"
    stream = f"stream,id=s,server=on,addr.type=unix,addr.path={tmp_path / 'stream.sock'}"
    if name == "toynic":
        return start_toynic("-qmp", f"unix:{qmp_path},server=on,wait=off",
                            "-netdev", stream), qmp_path
    # Qemu opens its own QMP socket for the harness; the test's client uses a second one.
    return Qemu("-qmp", f"unix:{qmp_path},server=on,wait=off", "-netdev", stream,
                binary=qemu_binary(), workdir=tmp_path), qmp_path


@pytest.fixture(params=["toynic", "qemu"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    proc, qmp_path = _start(request.param, tmp_path)
    with qmp_session(proc, qmp_path, TIMEOUT) as (client, greeting):
        yield Target(request.param, proc, client, greeting, tmp_path / "stream.sock")


def test_greeting_has_qemus_shape(target: Target) -> None:
    qmp = target.greeting["QMP"]
    assert qmp["version"]["qemu"]["major"] == 7 and qmp["version"]["qemu"]["minor"] == 2
    assert isinstance(qmp["version"]["package"], str)
    assert isinstance(qmp["capabilities"], list)
    assert target.qmp.cmd("query-version")["qemu"] == qmp["version"]["qemu"]


def test_query_status_and_name(target: Target) -> None:
    status = target.qmp.cmd("query-status")
    assert status["status"] == "running" and status["running"] is True
    assert target.qmp.cmd("query-name") == {}


def test_stream_events_when_a_peer_comes_and_goes(target: Target) -> None:
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.connect(str(target.stream_path))
    event = target.qmp.pull_event(wait=TIMEOUT)
    assert event is not None and event["event"] == "NETDEV_STREAM_CONNECTED"
    assert event["data"] == {"netdev-id": "s",
                             "addr": {"type": "unix", "path": str(target.stream_path)}}
    assert set(event["timestamp"]) == {"seconds", "microseconds"}
    info = target.qmp.cmd("human-monitor-command", **{"command-line": "info network"})
    assert f"s: index=0,type=stream,unix:{target.stream_path}" in info
    peer.close()
    event = target.qmp.pull_event(wait=TIMEOUT)
    assert event is not None and event["event"] == "NETDEV_STREAM_DISCONNECTED"
    assert event["data"] == {"netdev-id": "s"}


@pytest.mark.parametrize(("command", "arguments", "error_class", "desc"), [
    ("no-such-command", None, "CommandNotFound", "The command no-such-command has not been found"),
    ("set_link", {"name": "nothing", "up": True}, "DeviceNotFound", "Device 'nothing' not found"),
    ("netdev_del", {"id": "nothing"}, "DeviceNotFound", "Device 'nothing' not found"),
    ("netdev_add", {"type": "stream", "id": "n2"}, "GenericError", "Parameter 'addr' is missing"),
    ("query-status", {"bogus": 1}, "GenericError", "Parameter 'bogus' is unexpected"),
    ("set_link", {"name": "s"}, "GenericError", "Parameter 'up' is missing"),
])
def test_error_objects(target: Target, command: str, arguments: dict | None, error_class: str,
                       desc: str) -> None:
    reply = target.qmp.cmd_raw(command, arguments)
    assert reply["error"] == {"class": error_class, "desc": desc}
    # The session goes on.
    assert target.qmp.cmd("query-status")["running"] is True


def test_bad_input_shapes(target: Target) -> None:
    assert target.qmp.cmd_obj({"foo": 1})["error"] == {
        "class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}
    assert target.qmp.cmd("query-status")["running"] is True


def test_netdev_add_and_del(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "added.sock"
    target.qmp.cmd("netdev_add", type="stream", id="n2", server=True,
                   addr={"type": "unix", "path": str(path)})
    info = target.qmp.cmd("human-monitor-command", **{"command-line": "info network"})
    assert "n2: index=0,type=stream," in info
    wait_for(path.exists, TIMEOUT, "the added server's socket")
    target.qmp.cmd("netdev_del", id="n2")
    info = target.qmp.cmd("human-monitor-command", **{"command-line": "info network"})
    assert "n2:" not in info


def test_quit_sends_shutdown_and_ends_the_process(target: Target) -> None:
    assert target.qmp.cmd("quit") == {}
    event = target.qmp.pull_event(wait=TIMEOUT)
    assert event is not None and event["event"] == "SHUTDOWN"
    assert event["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert target.proc.wait(TIMEOUT) == 0


def test_toynic_malformed_json_gets_an_error_and_the_session_goes_on(tmp_path: Path) -> None:
    """QEMU's streaming parser waits for the rest of a broken object; toynic answers each
    line (docs/quirks.md), so this one runs against toynic only, over a raw socket."""
    proc, qmp_path = _start("toynic", tmp_path)
    with proc:
        sock = wait_for(lambda: unix_connect(qmp_path), TIMEOUT, "the QMP socket")
        sock.settimeout(TIMEOUT)
        lines = sock.makefile("rb")
        assert b'"QMP"' in lines.readline()
        sock.sendall(b'{"execute": "query-status"}\n')
        assert b'"CommandNotFound"' in lines.readline()
        sock.sendall(b'{"execute": "qmp_capabilities"}\n')
        assert lines.readline().strip() == b'{"return": {}}'
        sock.sendall(b'{bad json\n[1]\n{"execute": "query-status", "id": 7}\n')
        assert b'"desc": "JSON parse error' in lines.readline()
        assert b'"QMP input must be a JSON object"' in lines.readline()
        assert b'"id": 7' in lines.readline()
        sock.close()
