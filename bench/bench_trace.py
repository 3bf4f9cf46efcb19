"""What tracing costs (QEMU: trace/control.c, the log backend), off versus on.

In process, one NE2000 board: data-port reads per second (remote DMA, traced only at its
start and end) and register writes per second (one `ne2000_ioport_write` line each when
on), with the DISABLED trace, with a live Trace whose events are all off, and with
`ne2000_*` on, written to /dev/null.

As a process, the hub relay of bench_relay.py (two `listen=` stream netdevs on hub 0):
frames per second at 64 and 1514 bytes without `-trace`, with `-trace` matching none of
its events, and with `-trace 'net_*' -D /dev/null` (every queue, socket and hub event).

Prints JSON lines:
{"bench": "trace_ne2000", "op": "data_port_read"|"register_write", "mode": M, "per_s": N}
{"bench": "trace_relay", "mode": M, "frame_size": S, "frames_per_s": F, "ok": true}
{"bench": "trace", "ratio": "<mode>/off", "what": W, "value": R}
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_relay  # noqa: E402

from devices.ne2000 import Ne2000Isa  # noqa: E402
from emu.core.trace import DISABLED, Trace  # noqa: E402

OPS = 200_000
REPEATS = 3  # best of: the machine is shared, the slow runs are the noisy ones
Access = Callable[[int, int], int]
Write = Callable[[int, int, int], None]
RELAY_SIZES = (64, 1514)
RELAY_MODES = {
    "off": [],
    "idle": ["-trace", "ne2000_*", "-D", os.devnull],
    "net_*": ["-trace", "net_*", "-D", os.devnull],
}


def card_with(mode: str) -> tuple[Ne2000Isa, Trace | None]:
    card = Ne2000Isa()
    trace = None
    if mode != "off":
        trace = Trace()
        trace.open_log(os.devnull)
        if mode == "ne2000_*":
            trace.enable("ne2000_*")
    card.set_trace(trace if trace is not None else DISABLED)
    w = card.write
    w(0x00, 1, 0x21)
    w(0x0E, 1, 0x49)  # DCR: word-wide
    return card, trace


def rate(fn: Callable[[], None], ops: int) -> int:
    start = time.perf_counter()
    fn()
    return round(ops / (time.perf_counter() - start))


def bench_ne2000() -> dict[tuple[str, str], int]:
    results = {}
    for mode in ("off", "idle", "ne2000_*"):
        card, trace = card_with(mode)

        def data_reads(read: Access = card.read, write: Write = card.write) -> None:
            for i in range(OPS):
                if i % 16384 == 0:  # re-arm a 32 KiB remote read now and then
                    write(0x0A, 1, 0x00)
                    write(0x0B, 1, 0x80)
                    write(0x08, 1, 0x00)
                    write(0x09, 1, 0x40)
                    write(0x00, 1, 0x0A)
                read(0x10, 2)

        def register_writes(write: Write = card.write) -> None:
            for i in range(OPS):
                write(0x03, 1, 0x46 + (i & 7))  # BNRY

        for op, fn in (("data_port_read", data_reads), ("register_write", register_writes)):
            per_s = max(rate(fn, OPS) for _ in range(REPEATS))
            results[(op, mode)] = per_s
            print(json.dumps({"bench": "trace_ne2000", "op": op, "mode": mode,
                              "per_s": per_s}), flush=True)
        if trace is not None:
            trace.close()
    return results


def run_relay(mode: str) -> dict[int, dict[str, object]]:
    results = {}
    with bench_relay.running_relay(RELAY_MODES[mode]) as (pid, tx, rx):
        for size in RELAY_SIZES:
            result = bench_relay.measure(tx, rx, size, pid)
            results[size] = result
            print(json.dumps({"bench": "trace_relay", "mode": mode, "frame_size": size,
                              "frames_per_s": result["frames_per_s"],
                              "relay_cpu": result["relay_cpu"], "ok": result["ok"]}),
                  flush=True)
    return results


def ratio(what: str, mode: str, value: float) -> None:
    print(json.dumps({"bench": "trace", "ratio": f"{mode}/off", "what": what,
                      "value": round(value, 3)}), flush=True)


def main() -> int:
    ne2000 = bench_ne2000()
    for op in ("data_port_read", "register_write"):
        for mode in ("idle", "ne2000_*"):
            ratio(op, mode, ne2000[(op, mode)] / ne2000[(op, "off")])
    relay = {mode: run_relay(mode) for mode in RELAY_MODES}
    for size in RELAY_SIZES:
        base = relay["off"][size]["frames_per_s"]
        for mode in ("idle", "net_*"):
            ratio(f"relay_{size}", mode, relay[mode][size]["frames_per_s"] / max(base, 1))  # type: ignore[operator]
    return 0 if all(r["ok"] for runs in relay.values() for r in runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
