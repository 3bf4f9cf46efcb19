"""QEMU 7.2's `ne2k_isa` driven through its qtest protocol — the oracle side of the NE2000
differential test (tests/interop/test_ne2000_diff.py), in the manner of QEMU's own
tests/qtest/libqtest.c.

QEMU runs `-machine isapc` with a 64 KiB BIOS that only halts the CPU (Debian's QEMU has
no `-accel qtest`), the NIC on a UDP socket netdev whose other end is a socket here, and
a `filter-dump` on that netdev: a frame sent to QEMU has reached the NIC once its pcap
record appears (the dump and the NIC's receive run in the same handler). The ISA IRQ
line is watched with qtest's `irq_intercept_in` on the slave i8259 (IRQ 9 is its input 1).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from tests.netsupport import (
    LOOPBACK,
    Proc,
    QmpClient,
    free_port,
    qemu_binary,
    unix_connect,
    wait_for,
)

IOBASE = 0x300
IRQ = 9
SLAVE_PIC_IOBASE = 0xA0
RESET_VECTOR = 0xFFF0
HALT_LOOP = bytes((0xFA, 0xF4, 0xEB, 0xFD))  # cli; hlt; jmp $-1
BIOS_SIZE = 0x10000
REPLY_TIMEOUT = 10.0


def write_halting_bios(path: Path) -> Path:
    image = bytearray(BIOS_SIZE)
    image[RESET_VECTOR:RESET_VECTOR + len(HALT_LOOP)] = HALT_LOOP
    path.write_bytes(bytes(image))
    return path


class QemuNe2000:
    """One QEMU with one ne2k_isa at 0x300/IRQ 9; port I/O, the IRQ line, frames in/out."""

    def __init__(self, workdir: Path, mac: str = "52:54:00:12:34:56") -> None:
        tag = f"{os.getpid()}-{time.monotonic_ns()}"
        self._qtest_path = workdir / f"qtest-{tag}.sock"
        qmp_path = workdir / f"qmp-{tag}.sock"
        self.pcap = workdir / f"ne2k-{tag}.pcap"
        bios = write_halting_bios(workdir / "halt.bin")
        self.wire = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.wire.bind((LOOPBACK, 0))
        self.wire.setblocking(False)
        self.qemu_port = free_port(socket.SOCK_DGRAM)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self._qtest_path))
        listener.listen(1)
        listener.settimeout(REPLY_TIMEOUT)
        wire_port = self.wire.getsockname()[1]
        self.proc = Proc([
            qemu_binary(), "-machine", "isapc", "-bios", str(bios), "-display", "none",
            "-nodefaults", "-qtest", f"unix:{self._qtest_path}", "-qtest-log", "/dev/null",
            "-qmp", f"unix:{qmp_path},server=on,wait=off",
            "-netdev", f"socket,id=n,udp={LOOPBACK}:{wire_port},"
                       f"localaddr={LOOPBACK}:{self.qemu_port}",
            "-object", f"filter-dump,id=d,netdev=n,file={self.pcap}",
            "-device", f"ne2k_isa,netdev=n,iobase={IOBASE:#x},irq={IRQ},mac={mac}",
        ], name="qemu")
        self._qmp: QmpClient | None = None
        try:
            self.sock, _ = listener.accept()
            self.sock.settimeout(REPLY_TIMEOUT)
            self._buf = b""
            self.irq_level = False
            self._intercept_slave_pic(qmp_path)
        except BaseException:
            self.close()
            raise
        finally:
            listener.close()
            self._qtest_path.unlink(missing_ok=True)

    def _intercept_slave_pic(self, qmp_path: Path) -> None:
        sock = wait_for(lambda: unix_connect(qmp_path), REPLY_TIMEOUT, "QEMU's QMP socket")
        sock.settimeout(REPLY_TIMEOUT)
        self._qmp = QmpClient(sock, self.proc.describe)
        devices = self._qmp.execute("qom-list", path="/machine/unattached")
        for dev in devices:
            if dev["type"] != "child<isa-i8259>":
                continue
            path = f"/machine/unattached/{dev['name']}"
            if self._qmp.execute("qom-get", path=path, property="iobase") == SLAVE_PIC_IOBASE:
                self.command(f"irq_intercept_in {path}")
                return
        raise RuntimeError("no slave i8259 in QEMU's isapc machine")

    # ---- the qtest protocol ------------------------------------------------------------

    def _line(self) -> str:
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"qtest closed: {self.proc.describe()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def command(self, text: str) -> str:
        """Send one qtest command; return the text after OK. IRQ lines seen meanwhile
        update `irq_level` (only IRQ 9's input, 1 on the slave PIC, is watched)."""
        self.sock.sendall(text.encode() + b"\n")
        while True:
            line = self._line()
            if line.startswith("IRQ "):
                _, what, line_no = line.split()
                if int(line_no) == IRQ - 8:
                    self.irq_level = what == "raise"
                continue
            if not line.startswith("OK"):
                raise RuntimeError(f"qtest {text!r}: {line}")
            return line[2:].strip()

    def outb(self, offset: int, value: int) -> None:
        self.command(f"outb {IOBASE + offset:#x} {value:#x}")

    def outw(self, offset: int, value: int) -> None:
        self.command(f"outw {IOBASE + offset:#x} {value:#x}")

    def inb(self, offset: int) -> int:
        return int(self.command(f"inb {IOBASE + offset:#x}"), 16)

    def inw(self, offset: int) -> int:
        return int(self.command(f"inw {IOBASE + offset:#x}"), 16)

    # ---- frames ------------------------------------------------------------------------

    def transmitted(self) -> list[bytes]:
        """Frames the NIC sent since the last call (each was written before its OK)."""
        frames = []
        while True:
            try:
                frames.append(self.wire.recv(65536))
            except BlockingIOError:
                return frames

    def inject(self, frame: bytes) -> None:
        """Send `frame` to the NIC and return once the NIC has been handed it."""
        before = self.pcap.stat().st_size
        self.wire.sendto(frame, (LOOPBACK, self.qemu_port))
        wait_for(lambda: self.pcap.stat().st_size > before, REPLY_TIMEOUT,
                 "QEMU's filter-dump to record the injected frame", interval=0.0002)
        # Any IRQ change the receive made was written before this answer.
        self.command("readb 0x0")

    def close(self) -> None:
        if self._qmp is not None:
            self._qmp.close()
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()
        self.wire.close()
        self.proc.stop()
        self.proc.close()
        self.pcap.unlink(missing_ok=True)
