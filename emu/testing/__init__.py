"""The testing kit — toynic's counterpart of QEMU's libqtest and its qtest helpers.

The public API is what this package exports (`from emu.testing import Lab, FramePeer,
QTest, ...`, documented in docs/testing-kit.md); the modules behind it may move:

- emu.testing.lab: `Lab`, `LabMachine`, `FramePeer`, `GUESTS`;
- emu.testing.qtest: `QTest`; emu.testing.programs: `RegWrite`, `apply_program`;
- emu.testing.faults: `Fate`, `FaultSchedule`, `FaultFilter`, `apply_faults` and the
  strategies `fates`, `fault_schedules` (link faults Hypothesis can shrink);
- emu.testing.clients: `RecordingClient`; emu.testing.ports: `free_port`, `free_ports`;
- emu.testing.links: `FrameWatch` (Lab.on_frame), `Middlebox` (Lab.splice);
- emu.testing.report: what a failing lab leaves (Lab.failure_report, write_artifacts);
  emu.testing.machine_settings: `machine_settings` (Hypothesis settings for machines);
- emu.testing.frames: `ethernet`, `ipv4`, `udp`, `icmp_echo`, `arp_request`, ...;
- emu.testing.streams: `record`, `records`, `StreamCase` (and `NET_BUFSIZE`);
- emu.testing.strategies: the Hypothesis strategies, the one part that needs Hypothesis.
  Without it they still import, and calling one raises ModuleNotFoundError saying how
  to install Hypothesis.
"""

from emu.testing.clients import RecordingClient
from emu.testing.faults import (
    DELIVER,
    Fate,
    FaultFilter,
    FaultSchedule,
    apply_faults,
    fates,
    fault_schedules,
)
from emu.testing.frames import BROADCAST, arp_request, ethernet, icmp_echo, inet_checksum, ipv4, udp
from emu.testing.lab import GUESTS, FramePeer, Lab, LabMachine
from emu.testing.links import FrameWatch, Middlebox
from emu.testing.machine_settings import machine_settings
from emu.testing.ports import free_port, free_ports
from emu.testing.programs import RegWrite, apply_program
from emu.testing.qtest import QTest
from emu.testing.strategies import (
    corrupt_streams,
    ethernet_frames,
    frame_sizes,
    mac_addresses,
    malformed_frames,
    ne2000_programs,
    socket_streams,
    valid_frames,
)
from emu.testing.streams import StreamCase, record, records
from netdev.framing import NET_BUFSIZE

# The kit's first name for NET_BUFSIZE; kept so tests written against it keep working.
MAX_RECORD = NET_BUFSIZE

__all__ = [
    "BROADCAST",
    "DELIVER",
    "GUESTS",
    "MAX_RECORD",
    "NET_BUFSIZE",
    "Fate",
    "FaultFilter",
    "FaultSchedule",
    "FramePeer",
    "FrameWatch",
    "Lab",
    "LabMachine",
    "Middlebox",
    "QTest",
    "RecordingClient",
    "RegWrite",
    "StreamCase",
    "apply_faults",
    "apply_program",
    "arp_request",
    "corrupt_streams",
    "ethernet",
    "ethernet_frames",
    "fates",
    "fault_schedules",
    "frame_sizes",
    "free_port",
    "free_ports",
    "icmp_echo",
    "inet_checksum",
    "ipv4",
    "mac_addresses",
    "machine_settings",
    "malformed_frames",
    "ne2000_programs",
    "record",
    "records",
    "socket_streams",
    "udp",
    "valid_frames",
]
