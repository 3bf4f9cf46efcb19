"""The testing kit as a public API (docs/testing-kit.md): what `emu.testing` exports, that
it imports without Hypothesis, and the shared helpers the tests build on."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

import emu.testing
from emu.testing import RecordingClient, free_ports, record, records
from netdev.client import NetClient, connect_peers
from netdev.framing import Reassembler

REPO = Path(__file__).resolve().parents[2]

PUBLIC = {
    "BROADCAST", "GUESTS", "MAX_RECORD", "NET_BUFSIZE", "FramePeer", "Lab", "LabMachine", "QTest",
    "RecordingClient", "RegWrite", "StreamCase", "apply_program", "arp_request",
    "corrupt_streams", "ethernet", "ethernet_frames", "frame_sizes", "free_port", "free_ports",
    "icmp_echo", "inet_checksum", "ipv4", "mac_addresses", "malformed_frames", "ne2000_programs",
    "record", "records", "socket_streams", "udp", "valid_frames",
    "DELIVER", "Fate", "FaultFilter", "FaultSchedule", "apply_faults", "fates", "fault_schedules",
    "FrameWatch", "Middlebox", "machine_settings",
}
STRATEGIES = ("mac_addresses", "frame_sizes", "ethernet_frames", "valid_frames",
              "malformed_frames", "ne2000_programs", "socket_streams", "corrupt_streams")


def test_the_public_api_is_what_the_package_exports() -> None:
    assert set(emu.testing.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(emu.testing, name) is not None, name


# What toynic 0.1.0 exported: a test written against it must keep importing.
RELEASED_0_1 = {
    "BROADCAST", "FramePeer", "GUESTS", "Lab", "LabMachine", "MAX_RECORD", "QTest", "RegWrite",
    "StreamCase", "apply_program", "arp_request", "corrupt_streams", "ethernet",
    "ethernet_frames", "free_port", "icmp_echo", "inet_checksum", "ipv4", "mac_addresses",
    "malformed_frames", "ne2000_programs", "socket_streams", "udp", "valid_frames",
}


def test_every_released_name_still_imports() -> None:
    assert sorted(RELEASED_0_1 - set(emu.testing.__all__)) == []
    assert emu.testing.MAX_RECORD == emu.testing.NET_BUFSIZE


def test_every_public_name_is_documented() -> None:
    guide = (REPO / "docs" / "testing-kit.md").read_text()
    assert [name for name in sorted(PUBLIC) if f"`{name}" not in guide] == []


# Run in a fresh interpreter in which `import hypothesis` fails, as on a machine without it.
WITHOUT_HYPOTHESIS = f"""
import sys
sys.modules["hypothesis"] = None
from emu.testing import BROADCAST, FramePeer, Lab, QTest, RecordingClient, ethernet, free_port
from emu.testing import {", ".join(STRATEGIES)}
with Lab() as lab:
    peer = lab.peer("wire")
    peer.send(ethernet(BROADCAST, bytes(6), 0x88B5, b"x"))
QTest().add_ne2000(0x300, 9)
for strategy in ({", ".join(STRATEGIES)}):
    try:
        strategy()
    except ModuleNotFoundError as error:
        assert error.name == "hypothesis", error.name
        print(error)
    else:
        raise AssertionError(strategy.__name__ + " ran without Hypothesis")
"""


def test_the_kit_imports_and_runs_without_hypothesis() -> None:
    result = subprocess.run([sys.executable, "-c", WITHOUT_HYPOTHESIS], cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        f"emu.testing.{name} needs Hypothesis, which is not installed: "
        "pip install 'toynic[test]' (or pip install hypothesis)" for name in STRATEGIES]


def test_recording_client_keeps_frames_in_order_and_can_be_slow() -> None:
    sender, client = NetClient("src", "test"), RecordingClient("sink")
    connect_peers(sender, client)
    assert sender.send(b"one") == 3
    client.accepting = False
    assert not client.can_receive()
    assert sender.send(b"two") == 0  # queued at the slow client's door
    assert sender.send(b"") == 0
    assert client.received == [b"one"]
    client.resume()
    assert client.received == [b"one", b"two", b""]
    assert len(client.incoming_queue) == 0


def test_records_are_what_the_stream_reader_reads_back() -> None:
    frames = [b"a", b"", b"bc" * 300]
    assert record(b"abc") == b"\x00\x00\x00\x03abc"
    assert records(frames) == b"".join(map(record, frames))
    feed = Reassembler().feed(records(frames))
    assert [f for batch in feed.batches for f in batch.frames()] == [b"a", b"bc" * 300]
    assert feed.empty_records == 1


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_free_ports_are_distinct_and_bindable(kind: socket.SocketKind) -> None:
    ports = free_ports(3, kind)
    assert len(set(ports)) == 3
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", ports[0]))
