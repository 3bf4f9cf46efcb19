"""Testing kit — toynic's counterpart of QEMU's libqtest plus qtest's network helpers, for
users' own property-based protocol tests (docs/testing-kit.md explains it step by step).

- `Lab`: machines, netdevs and in-process frame peers on one MainLoop, each machine's
  console captured, everything closed on exit (`with Lab() as lab:`);
- `FramePeer`: the test's own NetClient, plugged into a NIC or a netdev by name: it
  records every frame it receives and sends frames with `send(frame)`;
- `QTest` (re-exported from emu.testing.qtest): devices driven from Python without a CPU;
- Ethernet/ARP/IPv4/ICMP/UDP frame builders (no scapy needed) and Hypothesis
  strategies: frames (valid and malformed), NE2000 register programs, and socket byte
  streams (length-prefixed records, arbitrarily chunked, plus corrupt variants).

Hypothesis is needed only by the strategies; the rest runs on the standard library.
"""

from __future__ import annotations

import io
import itertools
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emu.board.loader import GUEST_DIR
from emu.board.machine import Machine
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.monitor.hmp import Monitor
from emu.testing.qtest import QTest
from netdev.client import NetClient, connect_peers
from netdev.framing import MAX_FRAME as MAX_RECORD
from netdev.net import Net

try:
    from hypothesis import strategies as st
except ImportError as err:  # pragma: no cover - the kit is used from test environments
    raise ImportError("emu.testing needs Hypothesis: pip install 'toynic[test]'") from err

__all__ = [
    "BROADCAST", "GUESTS", "MAX_RECORD", "FramePeer", "Lab", "LabMachine", "QTest", "RegWrite",
    "StreamCase", "apply_program", "arp_request", "corrupt_streams", "ethernet",
    "ethernet_frames", "free_port", "icmp_echo", "inet_checksum", "ipv4", "mac_addresses",
    "malformed_frames", "ne2000_programs", "socket_streams", "udp", "valid_frames",
]

GUESTS = GUEST_DIR
BROADCAST = b"\xff" * 6
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
LOOPBACK = "127.0.0.1"
LAB_MAC_BASE = bytes.fromhex("525400123456")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for `listen=` netdevs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


# -- the lab -----------------------------------------------------------------------------

class FramePeer(NetClient):
    """A NetClient the test owns: `received` holds every frame delivered to it, in order."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "peer")
        self.info_str = "test peer"
        self.received: list[bytes] = []
        self.accepting = True

    def receive(self, frame: bytes) -> int:
        # accepting=False models a slow receiver: the net layer queues until flush_queued().
        if not self.accepting:
            return 0
        self.received.append(bytes(frame))
        return len(frame) or 1

    def can_receive(self) -> bool:
        return self.accepting

    def resume(self) -> None:
        """Start accepting again and take what the net layer queued meanwhile."""
        self.accepting = True
        self.flush_queued()


@dataclass
class LabMachine:
    """One machine of a Lab with its captured console and error output."""

    machine: Machine
    console: io.BytesIO
    errors: io.StringIO
    boards: list[Any] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.console.getvalue().decode(errors="replace")

    @property
    def exit_code(self) -> int | None:
        return self.machine.exit_code

    @property
    def nic(self) -> Any:
        """The first NE2000 board (its `.chip`, `.nc`, `.stats`, `.mac`)."""
        return self.boards[0]


class Lab:
    """Machines, netdevs and peers of one test on one MainLoop; `close()` releases all."""

    def __init__(self) -> None:
        self.loop = MainLoop()
        self.net = Net(self.loop)
        self.machines: list[LabMachine] = []
        self.peers: dict[str, FramePeer] = {}
        self._nics = 0
        self._closed = False

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def netdev(self, text: str) -> NetClient:
        """A `-netdev` as on the command line: `socket,id=n0,listen=127.0.0.1:5555`."""
        return self.net.add_netdev(parse_opts(text, "type"))

    def peer(self, name: str, netdev: str | None = None) -> FramePeer:
        """A FramePeer; with `netdev`, joined to that netdev now, else named later by a
        device's `netdev=NAME`."""
        peer = FramePeer(name)
        if netdev is not None:
            connect_peers(peer, self.net.find_netdev(netdev))
        self.peers[name] = peer
        self.net.add_client(peer)
        return peer

    def machine(self, kernel: str | Path, append: str = "", devices: Sequence[str] = (),
                *, ram_size: int = 16 << 20, icount_shift: int = 0,
                icount_sleep: bool = True) -> LabMachine:
        """A machine running `kernel` (a path, or a name in emu/guests such as "echo").

        `devices` are `-device` strings; a NIC without `id=` is named `ne2k_isa.N` and
        one without `mac=` gets 52:54:00:12:34:56 + N (N counts the lab's NICs), so
        machines never clash. icount_sleep is on, as on the command line: an idle guest
        waits in real time for its next timer, so frames the test sends while the guest
        waits arrive "in time". With icount_sleep=False idle time jumps straight to the
        next timer (deterministic and fast, but a guest waiting with a timeout gives up
        at once unless its input is already there)."""
        path = Path(kernel)
        if not path.exists() and (GUESTS / f"{kernel}.elf").exists():
            path = GUESTS / f"{kernel}.elf"
        console, errors = io.BytesIO(), io.StringIO()
        machine = Machine(self.loop, ram_size=ram_size, icount_shift=icount_shift,
                          icount_sleep=icount_sleep, console=console, stderr=errors)
        machine.load_kernel(str(path), append)
        lab_machine = LabMachine(machine, console, errors)
        for text in devices:
            lab_machine.boards.append(self._add_device(machine, text))
        self.machines.append(lab_machine)
        machine.start()
        return lab_machine

    def _add_device(self, machine: Machine, text: str) -> Any:
        opts = parse_opts(text, "driver")
        index = self._nics
        self._nics += 1
        opts.values.setdefault("id", f"ne2k_isa.{index}")
        if "mac" not in opts.values:
            mac = (int.from_bytes(LAB_MAC_BASE, "big") + index).to_bytes(6, "big")
            opts.values["mac"] = ":".join(f"{b:02x}" for b in mac)
        peer = self.peers.get(opts.values.get("netdev", ""))
        if peer is not None:
            del opts.values["netdev"]
        board = machine.add_device(opts, self.net)
        if peer is not None:
            connect_peers(board.nc, peer)
        return board

    def monitor(self, machine: LabMachine | None = None) -> Monitor:
        """The HMP monitor over this lab's network (and `machine`, if given)."""
        return Monitor(self.net, machine.machine if machine is not None else None)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Run every machine and socket until `predicate()` holds (True) or `timeout` real
        seconds pass (False). An exception inside the emulator re-raises here."""
        reached = self.loop.run_until(predicate, timeout)
        for lab_machine in self.machines:
            lab_machine.machine.run_until(lambda: True, 0)
        return reached

    def wait_output(self, machine: LabMachine, text: str, timeout: float = 30.0) -> bool:
        return self.run_until(lambda: text in machine.output, timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.net.close()
        self.loop.close()


# -- frame builders ------------------------------------------------------------------------

def inet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum (IPv4 header, ICMP, UDP)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, *, ttl: int = 64,
         ident: int = 0) -> bytes:
    """An IPv4 packet (no options, DF clear) with a correct header checksum."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, ttl, proto,
                         0, src, dst)
    checksum = inet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def icmp_echo(ident: int, seq: int, data: bytes, *, reply: bool = False) -> bytes:
    body = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + data
    return body[:2] + struct.pack("!H", inet_checksum(body)) + body[4:]


def udp(src_ip: bytes, dst_ip: bytes, sport: int, dport: int, data: bytes) -> bytes:
    """A UDP datagram with its checksum over the IPv4 pseudo-header (0 becomes 0xFFFF)."""
    length = 8 + len(data)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, length)
    checksum = inet_checksum(pseudo + header + data) or 0xFFFF
    return header[:6] + struct.pack("!H", checksum) + data


def arp_request(src_mac: bytes, src_ip: bytes, target_ip: bytes) -> bytes:
    """A broadcast ARP who-has frame."""
    body = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, src_mac, src_ip, bytes(6),
                       target_ip)
    return ethernet(BROADCAST, src_mac, ETH_P_ARP, body)


# -- Hypothesis strategies -----------------------------------------------------------------

def mac_addresses(own: bytes | None = None) -> st.SearchStrategy[bytes]:
    """Any destination a NIC may see: broadcast, multicast, `own`, or any unicast."""
    choices = [st.just(BROADCAST), st.binary(min_size=6, max_size=6),
               st.binary(min_size=5, max_size=5).map(lambda b: bytes([b[0] | 1]) + b[1:]),
               st.binary(min_size=5, max_size=5).map(lambda b: bytes([b[0] & 0xFE]) + b[1:])]
    if own is not None:
        choices.insert(0, st.just(own))
    return st.one_of(*choices)


def ethernet_frames(own: bytes | None = None, *, min_size: int = 0,
                    max_size: int = 2000) -> st.SearchStrategy[bytes]:
    """Raw frames of any length in [min_size, max_size] whose first 6 bytes (when the
    frame is that long) are a destination from `mac_addresses(own)`."""
    return st.builds(lambda dst, raw: (dst + raw[6:])[:len(raw)], mac_addresses(own),
                     st.binary(min_size=min_size, max_size=max_size))


def valid_frames(dst: bytes, src: bytes, src_ip: bytes = bytes((10, 0, 0, 2)),
                 dst_ip: bytes = bytes((10, 0, 0, 1))) -> st.SearchStrategy[bytes]:
    """Well-formed ARP requests, ICMP echo requests and UDP datagrams from src to dst."""
    payloads = st.binary(max_size=1400)
    ports = st.integers(1, 0xFFFF)
    ping = st.builds(lambda i, s, d: ethernet(dst, src, ETH_P_IP, ipv4(
        src_ip, dst_ip, 1, icmp_echo(i, s, d))), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
        payloads)
    datagram = st.builds(lambda sp, dp, d: ethernet(dst, src, ETH_P_IP, ipv4(
        src_ip, dst_ip, 17, udp(src_ip, dst_ip, sp, dp, d))), ports, ports, payloads)
    return st.one_of(st.just(arp_request(src, src_ip, dst_ip)), ping, datagram)


def malformed_frames(dst: bytes, src: bytes) -> st.SearchStrategy[bytes]:
    """Frames a stack must ignore: valid ones truncated, with a flipped byte in the IPv4
    header or ICMP/UDP part, or with an unknown ethertype."""
    base = valid_frames(dst, src)

    def flip(frame: bytes, where: int, mask: int) -> bytes:
        at = 14 + where % max(1, len(frame) - 14)
        return frame[:at] + bytes([frame[at] ^ mask]) + frame[at + 1:]

    return st.one_of(
        st.builds(lambda f, n: f[:n], base, st.integers(0, 41)),
        st.builds(flip, base, st.integers(0, 1500), st.integers(1, 255)),
        st.builds(lambda f, t: f[:12] + struct.pack("!H", t) + f[14:], base,
                  st.integers(0, 0xFFFF).filter(lambda t: t not in (ETH_P_IP, ETH_P_ARP))),
    )


@dataclass(frozen=True)
class RegWrite:
    """One guest store to an NE2000: CR page `page` selected, then `value` written at
    `offset` (0x00-0x1F of the I/O window) with `width` bytes."""

    page: int
    offset: int
    width: int
    value: int


def ne2000_programs(max_writes: int = 40) -> st.SearchStrategy[list[RegWrite]]:
    """Sequences of register writes: any page, any offset of the window (registers, data
    port 0x10, reset port 0x1F), widths 1/2/4, any value of that width."""
    write = st.builds(
        lambda page, offset, width, value: RegWrite(page, offset, width,
                                                    value & ((1 << 8 * width) - 1)),
        st.integers(0, 3), st.integers(0, 0x1F), st.sampled_from((1, 2, 4)),
        st.integers(0, 0xFFFFFFFF))
    return st.lists(write, max_size=max_writes)


def apply_program(qtest: QTest, program: Iterable[RegWrite], iobase: int = 0x300) -> None:
    """Run a register program through QTest as a guest would: select the page in CR
    (keeping CR's other bits, never re-triggering a transmit), then store."""
    for op in program:
        cr = qtest.inb(iobase)
        qtest.outb(iobase, (cr & 0x3B) | op.page << 6)
        if op.width == 1:
            qtest.outb(iobase + op.offset, op.value)
        elif op.width == 2:
            qtest.outw(iobase + op.offset, op.value)
        else:
            qtest.outl(iobase + op.offset, op.value)


@dataclass(frozen=True)
class StreamCase:
    """Bytes for a stream socket netdev, as `chunks` (one send() each), and `frames`: what a
    correct reader delivers. `kind` is "ok", "oversize", "truncated" or "garbage"."""

    chunks: tuple[bytes, ...]
    frames: tuple[bytes, ...]
    kind: str = "ok"

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def _record(frame: bytes) -> bytes:
    return struct.pack(">I", len(frame)) + frame


def _chunked(data: bytes, cuts: list[int]) -> tuple[bytes, ...]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return tuple(data[a:b] for a, b in itertools.pairwise(points) if b > a)


def socket_streams(frames: st.SearchStrategy[bytes] | None = None, *,
                   max_frames: int = 8) -> st.SearchStrategy[StreamCase]:
    """Valid streams: BE32 length-prefixed records of `frames`, cut at arbitrary points."""
    frames = frames if frames is not None else st.binary(min_size=1, max_size=1514)
    return st.builds(
        lambda fs, cuts: StreamCase(_chunked(b"".join(map(_record, fs)), cuts), tuple(fs)),
        st.lists(frames, max_size=max_frames), st.lists(st.integers(0, 1 << 20), max_size=12))


def corrupt_streams(max_frames: int = 4) -> st.SearchStrategy[StreamCase]:
    """Streams a reader must survive: good records (`frames`), then damage. With an
    oversize length prefix (> MAX_RECORD) or a truncated last record (the sender stops
    mid-record) exactly `frames` arrive; after random garbage, `frames` is a prefix of
    what arrives (garbage may happen to parse as records)."""
    good = st.lists(st.binary(min_size=1, max_size=256), max_size=max_frames)
    cuts = st.lists(st.integers(0, 1 << 16), max_size=6)

    def oversize(fs: list[bytes], size: int, c: list[int]) -> StreamCase:
        data = b"".join(map(_record, fs)) + struct.pack(">I", size) + bytes(64)
        return StreamCase(_chunked(data, c), tuple(fs), "oversize")

    def truncated(fs: list[bytes], last: bytes, keep: int, c: list[int]) -> StreamCase:
        tail = _record(last)[:keep % (len(last) + 4)]
        return StreamCase(_chunked(b"".join(map(_record, fs)) + tail, c), tuple(fs), "truncated")

    def garbage(fs: list[bytes], junk: bytes, c: list[int]) -> StreamCase:
        return StreamCase(_chunked(b"".join(map(_record, fs)) + junk, c), tuple(fs), "garbage")

    return st.one_of(
        st.builds(oversize, good, st.integers(MAX_RECORD + 1, 0xFFFFFFFF), cuts),
        st.builds(truncated, good, st.binary(min_size=1, max_size=256), st.integers(0), cuts),
        st.builds(garbage, good, st.binary(min_size=1, max_size=512), cuts),
    )
