"""End-to-end fixtures: toynic machines running the guest programs of emu/guests, wired to
each other (or to the test) by `-netdev socket` (QEMU's tests/qtest/netdev-socket.c and
the avocado network tests play this role upstream).

- `ProcessLab`: the processes one test starts (toynic machines, QEMU), all stopped by PID
  when the test ends (the `lab` fixture), or by `with ProcessLab() as lab:` inside a
  network namespace (the testing kit's `Lab` runs machines in-process instead);
- `wait_output`, `finish`: wait for a console line, or for a machine to power off, with a
  deadline;
- `WirePeer`: the test's own end of a stream netdev (BE32 length-prefixed records) that
  answers ARP for its address and collects every frame the guest sent;
- `check_frames`: every ARP/IPv4/ICMP/UDP frame decodes in scapy with correct fields and
  checksums (scapy is the independent decoder).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from tests.netsupport import (
    LOOPBACK,
    REPO,
    Proc,
    Qemu,
    RecordReader,
    record,
    start_qemu,
    start_toynic,
    wait_for,
)

GUESTS = REPO / "emu" / "guests"
NETDEV_ID = "n0"
GROUP = "230.0.0.1"

# Virtual seconds run at least as slowly as real ones (1 ns per instruction, and the
# interpreter needs far more than 1 ns for one), so real deadlines are the guest's
# timeout plus margin for a loaded host.
FINISH_TIMEOUT = 90.0
READY_TIMEOUT = 30.0


def mac(n: int) -> str:
    """The MAC of machine number `n` in a test (52:54:00:00:00:0N, as QEMU's default OUI)."""
    return f"52:54:00:00:00:{n:02x}"


def guest_args(program: str, append: str, netdev: str, mac_addr: str,
               dump: Path | None = None) -> list[str]:
    """toynic arguments: one machine running emu/guests/PROGRAM.elf, one NE2000 on `netdev`
    (the socket options after `socket,id=n0,`), optionally a pcap of that netdev."""
    args = ["-kernel", str(GUESTS / f"{program}.elf"), "-append", append,
            "-netdev", f"socket,id={NETDEV_ID},{netdev}",
            "-device", f"ne2k_isa,netdev={NETDEV_ID},mac={mac_addr}"]
    if dump is not None:
        args += ["-object", f"filter-dump,id=d0,netdev={NETDEV_ID},file={dump}"]
    return args


class ProcessLab:
    """The processes of one test; `close` stops every one of them by its PID."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def machine(self, program: str, append: str, netdev: str, mac_addr: str, *,
                dump: Path | None = None, pass_fds: Sequence[int] = ()) -> Proc:
        proc = start_toynic(*guest_args(program, append, netdev, mac_addr, dump),
                            pass_fds=pass_fds)
        proc.name = f"toynic {program} ({mac_addr})"
        self.procs.append(proc)
        return proc

    def qemu(self, *args: str, workdir: Path) -> Qemu:
        q = start_qemu(*args, workdir=workdir)
        self.procs.append(q)
        return q

    def close(self) -> None:
        for proc in self.procs:
            proc.close()
        self.procs.clear()

    def __enter__(self) -> ProcessLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def lab() -> Iterator[ProcessLab]:
    with ProcessLab() as running:
        yield running


def _report(proc: Proc) -> str:
    return f"{proc.name} (pid {proc.pid})\n--- stdout:\n{proc.stdout}--- stderr:\n{proc.stderr}"


def wait_output(proc: Proc, text: str, timeout: float = READY_TIMEOUT) -> str:
    """Wait until `proc` printed `text` on its console; its output so far."""

    def printed() -> str | None:
        out = proc.stdout
        if text in out:
            return out
        if not proc.alive():
            raise AssertionError(f"exited with {proc.popen.returncode} before printing "
                                 f"{text!r}: {_report(proc)}")
        return None

    try:
        return wait_for(printed, timeout, f"{proc.name} to print {text!r}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: {_report(proc)}") from None


def finish(proc: Proc, timeout: float = FINISH_TIMEOUT) -> tuple[int, str]:
    """Wait for the guest to power off; (exit status, console output)."""
    try:
        status = proc.wait(timeout)
    except Exception as exc:
        raise AssertionError(f"did not finish in {timeout}s: {_report(proc)}") from exc
    return status, proc.stdout


def finish_ok(proc: Proc, timeout: float = FINISH_TIMEOUT) -> str:
    """Wait for the guest to power off with status 0; its console output."""
    status, out = finish(proc, timeout)
    assert status == 0, f"exit status {status}: {_report(proc)}"
    return out


# --- ping <-> pingd ----------------------------------------------------------------------

PINGD_IP = "10.0.0.1"
COUNT = 5


def assert_ping_ok(ping_out: str, pingd_out: str, src: str, count: int = COUNT) -> None:
    """ping got every reply, in sequence, and pingd answered each request from `src`."""
    for seq in range(1, count + 1):
        assert f"from {PINGD_IP}: icmp_seq={seq} ttl=64 time=" in ping_out, ping_out
        assert f"echo reply to {src} icmp_seq={seq} " in pingd_out, pingd_out
    assert f"{count} packets transmitted, {count} received, 0% packet loss" in ping_out
    assert "CORRUPTED" not in ping_out


# --- the test's own end of a stream netdev -----------------------------------------------

class WirePeer:
    """One stream connection carrying Ethernet frames between the test and a machine.

    It answers ARP requests for `ip` with `mac` by itself; every frame the machine sent
    is kept in `frames` (for `check_frames`).
    """

    def __init__(self, sock: socket.socket, mac_addr: str, ip: str) -> None:
        self.sock = sock
        self.mac = mac_addr
        self.ip = ip
        self.frames: list[bytes] = []
        self._reader = RecordReader()
        self._pending: list[bytes] = []
        sock.setblocking(False)

    @classmethod
    def accept(cls, listener: socket.socket, mac_addr: str, ip: str,
               timeout: float = READY_TIMEOUT) -> WirePeer:
        listener.settimeout(timeout)
        conn, _ = listener.accept()
        return cls(conn, mac_addr, ip)

    def send(self, frame: bytes | Packet) -> None:
        self.sock.setblocking(True)
        try:
            self.sock.sendall(record(bytes(frame)))
        finally:
            self.sock.setblocking(False)

    def _arp_reply(self, frame: bytes) -> bool:
        pkt = Ether(frame)
        if ARP not in pkt or pkt[ARP].op != 1 or pkt[ARP].pdst != self.ip:
            return False
        req = pkt[ARP]
        self.send(Ether(dst=req.hwsrc, src=self.mac)
                  / ARP(op=2, hwsrc=self.mac, psrc=self.ip, hwdst=req.hwsrc, pdst=req.psrc))
        return True

    def recv(self, timeout: float) -> bytes | None:
        """The next frame that is not an ARP request for us (answered here); None at the
        deadline."""
        deadline = time.monotonic() + timeout
        while True:
            while self._pending:
                frame = self._pending.pop(0)
                if not self._arp_reply(frame):
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = self.sock.recv(1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise ConnectionError("the machine closed the connection")
            got = self._reader.feed(chunk)
            self.frames.extend(got)
            self._pending.extend(got)

    def expect(self, match: Callable[[Packet], bool], timeout: float,
               what: str = "a frame") -> Packet:
        """The next frame `match` accepts (others are skipped); AssertionError at the
        deadline."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            frame = self.recv(remaining)
            if frame is None:
                break
            pkt = Ether(frame)
            if match(pkt):
                return pkt
        raise AssertionError(f"no {what} within {timeout}s")

    def close(self) -> None:
        self.sock.close()


def listener() -> socket.socket:
    """A listening TCP socket on 127.0.0.1 for a machine to `connect=` to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    sock.listen(1)
    return sock


# --- the independent decoder -------------------------------------------------------------

def _rebuilt(pkt: Packet, layer: type[Packet]) -> int:
    """What scapy computes for `layer`'s checksum field, from the same frame."""
    copy = Ether(bytes(pkt))
    del copy[layer].chksum
    return Ether(bytes(copy))[layer].chksum


def check_frame(frame: bytes) -> str:
    """Assert one frame decodes cleanly; returns its kind ("arp", "icmp", "udp", "other")."""
    pkt = Ether(frame)
    assert len(frame) >= 60, f"runt frame of {len(frame)} bytes: {frame.hex()}"
    if pkt.type == 0x0806:
        arp = pkt[ARP]
        assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen) == (1, 0x0800, 6, 4), arp.summary()
        assert arp.op in (1, 2), arp.summary()
        assert arp.hwsrc == pkt.src, f"ARP sender {arp.hwsrc} is not the Ethernet source"
        if arp.op == 2:
            assert arp.hwdst == pkt.dst, arp.summary()
        return "arp"
    if pkt.type != 0x0800:
        return "other"
    ip = pkt[IP]
    assert ip.version == 4 and ip.ihl == 5, ip.summary()
    assert 14 + ip.len <= len(frame), f"IP length {ip.len} beyond a {len(frame)}-byte frame"
    assert ip.frag == 0 and not ip.flags.MF, "fragment"
    assert ip.chksum == _rebuilt(pkt, IP), f"bad IPv4 header checksum in {frame.hex()}"
    if ip.proto == 1:
        assert ICMP in pkt, ip.summary()
        assert pkt[ICMP].chksum == _rebuilt(pkt, ICMP), f"bad ICMP checksum in {frame.hex()}"
        return "icmp"
    if ip.proto == 17:
        udp = pkt[UDP]
        assert udp.len == ip.len - 20, f"UDP length {udp.len} vs IP length {ip.len}"
        assert udp.chksum != 0, "UDP sent without a checksum"
        assert udp.chksum == _rebuilt(pkt, UDP), f"bad UDP checksum in {frame.hex()}"
        return "udp"
    return "other"


def check_frames(frames: Iterable[bytes]) -> dict[str, int]:
    """check_frame on each; counts per kind."""
    kinds: dict[str, int] = {}
    for frame in frames:
        kind = check_frame(frame)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds
