"""NE2000 device-side figures (QEMU counterpart: hw/net/ne2000.c's receive path and data port).

- `ne2000_rx_ring`: frames per second the NIC stores into its receive ring through its
  NetClient (60- and 1514-byte frames; the ring is recycled by register writes when full);
- `ne2000_rx_readout`: frames per second the reference driver (tests/ne2000_driver.py)
  takes out of the ring through the 16-bit data port via emu.testing.qtest (`rep insw`).

Prints JSON lines:
{"bench": "ne2000_rx_ring", "frame_size": S, "frames": N, "frames_per_s": F}
{"bench": "ne2000_rx_readout", "frame_size": S, "frames": N, "frames_per_s": F,
 "data_port_reads_per_s": R}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devices.dp8390_regs import EN0_BOUNDARY, EN1_CURPAG
from devices.ne2000 import Ne2000Isa
from emu.testing.qtest import QTest
from tests.ne2000_driver import Ne2000Driver

BASE = 0x300
MAC = bytes.fromhex("525400123456")
RX_START, RX_STOP = 0x46, 0xC0


def make() -> tuple[QTest, Ne2000Isa, Ne2000Driver]:
    qt = QTest()
    card = qt.add_ne2000(BASE, 9)
    driver = Ne2000Driver(qt, BASE, tx_page=0x40, rx_start=RX_START, rx_stop=RX_STOP)
    driver.probe()
    driver.init(rcr=0x04)
    return qt, card, driver


def recycle(qt: QTest) -> None:
    """Empty the ring the way a driver that dropped everything would."""
    qt.outb(BASE, 0x62)
    qt.outb(BASE + EN1_CURPAG, RX_START)
    qt.outb(BASE, 0x22)
    qt.outb(BASE + EN0_BOUNDARY, RX_STOP - 1)


def bench_rx_ring(size: int, frames: int) -> dict:
    qt, card, _ = make()
    frame = MAC + bytes(range(256)) * 6
    frame = frame[:size]
    nc = card.nc
    start = time.perf_counter()
    for _ in range(frames):
        if not nc.can_receive():
            recycle(qt)
        nc.receive(frame)
    elapsed = time.perf_counter() - start
    assert card.stats.accepted == frames
    return {"bench": "ne2000_rx_ring", "frame_size": size, "frames": frames,
            "frames_per_s": round(frames / elapsed)}


def bench_rx_readout(size: int, frames: int) -> dict:
    _, card, driver = make()
    frame = (MAC + bytes(range(256)) * 6)[:size]
    nc = card.nc
    taken = 0
    reads = 0
    elapsed = 0.0
    while taken < frames:
        while nc.can_receive() and card.stats.accepted < frames:
            nc.receive(frame)
        start = time.perf_counter()
        got = driver.receive()
        elapsed += time.perf_counter() - start
        assert got and all(f == frame for f in got)
        taken += len(got)
        reads += len(got) * (2 + (size + 1) // 2)
    return {"bench": "ne2000_rx_readout", "frame_size": size, "frames": taken,
            "frames_per_s": round(taken / elapsed), "data_port_reads_per_s": round(reads / elapsed)}


def main() -> None:
    for size, frames in ((60, 20000), (1514, 5000)):
        print(json.dumps(bench_rx_ring(size, frames)), flush=True)
    for size, frames in ((60, 5000), (1514, 1000)):
        print(json.dumps(bench_rx_readout(size, frames)), flush=True)


if __name__ == "__main__":
    main()
