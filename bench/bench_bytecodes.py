"""Python bytecodes per guest instruction: the cost of emulation as a count, the same on
a fast host, a slow one and a busy one (for one CPython version), where wall-clock
figures on a shared VM move by a third from one minute to the next. A change that makes
the guest path faster shows up here first, and exactly.

CPython reports every bytecode it executes to a trace function that asks for them
(`frame.f_trace_opcodes`); the counts below are of everything that runs in the emulator's
process during the measured part: translated regions, the dispatch loop, the
interpreter, devices and the net layer. Each workload runs on the deterministic lab
(`emu.testing.Lab(deterministic=True)`) or on a bare Cpu, so the same instructions are
executed, translated in the same places, on every run. A warm-up is not counted.

- `echo`: a frame sent to the `echo` guest and its reply received, 60 and 1514 bytes
  (per round trip: guest instructions, region calls, bytecodes);
- `flood`: the `flood` sender and sink on one hub, 64-byte frames (per frame the sink
  takes in, both machines together);
- `cpu`: bench_cpu.py's guests (CRC styles and memcpy) in the steady state (totals).

Prints JSON lines:
{"bench": "bytecodes", "workload": W, "guest_insns": I, "region_calls": C,
 "bytecodes": B, "bytecodes_per_insn": R}  (per round trip or frame; totals for `cpu`)

`python bench/bench_bytecodes.py --quick` measures fewer rounds (for the tests).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import bench_cpu

from emu.testing import Lab, ethernet

GUEST_MAC = bytes.fromhex("525400123456")
PEER_MAC = bytes.fromhex("525400000002")


class Counts:
    """Bytecodes executed, and calls of translated regions, while `counting()` is on."""

    def __init__(self) -> None:
        self.bytecodes = 0
        self.region_calls = 0

    def _local(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event == "opcode":
            self.bytecodes += 1
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        if frame.f_code.co_filename.startswith("<region"):
            self.region_calls += 1
        return self._local

    @contextmanager
    def counting(self) -> Iterator[None]:
        sys.settrace(self._global)
        try:
            yield
        finally:
            sys.settrace(None)


def line(workload: str, insns: int, counts: Counts, per: int) -> dict[str, object]:
    return {"bench": "bytecodes", "workload": workload,
            "guest_insns": round(insns / per, 1),
            "region_calls": round(counts.region_calls / per, 1),
            "bytecodes": round(counts.bytecodes / per, 1),
            "bytecodes_per_insn": round(counts.bytecodes / insns, 2)}


def echo(size: int, warm: int, rounds: int) -> dict[str, object]:
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        peer = lab.peer("p", "h1")
        guest = lab.machine("echo", "", [f"ne2k_isa,netdev=h0,mac={GUEST_MAC.hex(':')}"])
        frame = ethernet(GUEST_MAC, PEER_MAC, 0x88B5, bytes(size - 14))

        def round_trip() -> None:
            want = len(peer.received) + 1
            peer.send(frame)
            assert lab.run_until(lambda: len(peer.received) == want, 1), guest.output

        for _ in range(warm):
            round_trip()
        cpu = guest.machine.cpu
        start = cpu.instret
        counts = Counts()
        with counts.counting():
            for _ in range(rounds):
                round_trip()
        return line(f"echo_{size}", cpu.instret - start, counts, rounds)


def flood(warm: int, frames: int) -> dict[str, object]:
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        count = 10 * (warm + frames)
        sink = lab.machine("flood", f"mode=sink count={count} timeout=20",
                           ["ne2k_isa,netdev=h0"])
        sender = lab.machine("flood", f"mode=send count={count} size=64",
                             ["ne2k_isa,netdev=h1"])
        cpus = (sink.machine.cpu, sender.machine.cpu)
        stats = sink.nic.chip.stats
        assert lab.run_until(lambda: stats.accepted >= warm, 60), sink.output
        start, first = sum(cpu.instret for cpu in cpus), stats.accepted
        counts = Counts()
        with counts.counting():
            assert lab.run_until(lambda: stats.accepted >= first + frames, 60), sink.output
        # Per frame the sink took in while counting; the sender, a ring ahead, sent as many.
        return line("flood_64", sum(cpu.instret for cpu in cpus) - start, counts,
                    stats.accepted - first)


def cpu_loop(name: str, guest: Callable[[], bench_cpu.Asm], data: bytes, below: bytes,
             ram_size: int, warm: int, insns: int) -> dict[str, object]:
    cpu = bench_cpu.boot(guest(), data, below, ram_size)
    cpu.run(warm)
    start = cpu.instret
    counts = Counts()
    with counts.counting():
        cpu.run(insns)
    return line(f"cpu_{name}", cpu.instret - start, counts, 1)


def main(quick: bool) -> int:
    scale = 1 if quick else 4
    for size in (60, 1514):
        print(json.dumps(echo(size, warm=150, rounds=10 * scale)), flush=True)
    print(json.dumps(flood(warm=300, frames=50 * scale)), flush=True)
    data = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(bench_cpu.CRC_LEN))
    crc_ram = 1 << 20
    copy_ram = bench_cpu.CODE_SIZE + 2 * bench_cpu.COPY_LEN
    loops = (("crc32", bench_cpu.crc32_guest, b"", crc_ram),
             ("crc32_table", bench_cpu.crc32_table_guest, bench_cpu.crc_table(), crc_ram),
             ("crc16_ccitt", bench_cpu.crc16_ccitt_guest, b"", crc_ram),
             ("crc32c", bench_cpu.crc32c_guest, b"", crc_ram),
             ("memcpy", bench_cpu.memcpy_guest, b"", copy_ram))
    for name, guest, below, ram_size in loops:
        print(json.dumps(cpu_loop(name, guest, data, below, ram_size, warm=200_000,
                                  insns=20_000 * scale)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main("--quick" in sys.argv[1:]))
