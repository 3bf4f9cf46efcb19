"""NE2000 device-side figures (QEMU counterpart: hw/net/ne2000.c's receive path and data port).

- `ne2000_rx_ring`: frames per second the NIC stores into its receive ring through its
  NetClient (60- and 1514-byte frames; the ring is recycled by register writes when full);
- `ne2000_rx_readout`: frames per second the reference driver (tests/ne2000_driver.py)
  takes out of the ring through the 16-bit data port via emu.testing.qtest (`rep insw`);
- `ne2000_port_route`: what translated code gets from the board's bus routes
  (`devices.ne2000.Ne2000Isa.route`): a driver's block read (five register writes, then
  the block through the data port) as frames per second, word by word through the
  port's read handler and with its `read_burst` (all but the last word), and the
  register writes per second.

Prints JSON lines:
{"bench": "ne2000_rx_ring", "frame_size": S, "frames": N, "frames_per_s": F}
{"bench": "ne2000_rx_readout", "frame_size": S, "frames": N, "frames_per_s": F,
 "data_port_reads_per_s": R}
{"bench": "ne2000_port_route", "frame_size": S, "frames": N, "words_frames_per_s": W,
 "burst_frames_per_s": B, "data_port_reads_per_s": R, "register_writes_per_s": G}
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devices.dp8390_regs import (
    E8390_CMD,
    E8390_RREAD,
    E8390_START,
    EN0_BOUNDARY,
    EN0_RCNTHI,
    EN0_RCNTLO,
    EN0_RSARHI,
    EN0_RSARLO,
    EN1_CURPAG,
)
from devices.ne2000 import DATA_PORT, Ne2000Isa
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


def bench_port_route(size: int, frames: int) -> dict:
    _, card, _ = make()
    start_addr = RX_START << 8
    setup = [(card.route(offset, 1), offset, value) for offset, value in (
        (EN0_RCNTLO, size & 0xFF), (EN0_RCNTHI, size >> 8), (EN0_RSARLO, 0),
        (EN0_RSARHI, start_addr >> 8), (E8390_CMD, E8390_RREAD | E8390_START))]
    port = card.route(DATA_PORT, 2)
    read, burst = port.read, port.read_burst
    assert burst is not None
    words = size // 2

    def registers() -> None:
        for route, offset, value in setup:
            route.write(offset - route.base, 1, value)

    def by_words() -> None:
        for _ in range(frames):
            registers()
            for _ in range(words):
                read(0, 2)

    def by_burst() -> None:
        for _ in range(frames):
            registers()
            burst(0, 2, words - 1)
            read(0, 2)

    def only_registers() -> None:
        for _ in range(frames):
            registers()

    def timed(run: Callable[[], None]) -> float:
        begin = time.perf_counter()
        run()
        return time.perf_counter() - begin

    word_s, burst_s, reg_s = timed(by_words), timed(by_burst), timed(only_registers)
    return {"bench": "ne2000_port_route", "frame_size": size, "frames": frames,
            "words_frames_per_s": round(frames / word_s),
            "burst_frames_per_s": round(frames / burst_s),
            "data_port_reads_per_s": round(frames * words / max(word_s - reg_s, 1e-9)),
            "register_writes_per_s": round(frames * len(setup) / reg_s)}


def main() -> None:
    for size, frames in ((60, 20000), (1514, 5000)):
        print(json.dumps(bench_rx_ring(size, frames)), flush=True)
    for size, frames in ((60, 5000), (1514, 1000)):
        print(json.dumps(bench_rx_readout(size, frames)), flush=True)
    for size, frames in ((60, 20000), (1514, 2000)):
        print(json.dumps(bench_port_route(size, frames)), flush=True)


if __name__ == "__main__":
    main()
