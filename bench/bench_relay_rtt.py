"""Relay latency: one frame in flight through a hub relay between two `listen=` stream
netdevs, toynic against QEMU 7.2 in the same run (QEMU: net/socket.c + net/hub.c).

Peer A sends a frame; peer B reads it whole and sends it back; A reads it whole: two
relay passes per round trip, no batch to make. The relays are started as in
bench_relay.py. A warm-up of `WARMUP` round trips is not counted; medians and p99s
follow for every size, then one ratio line per size (below 1.0: toynic is faster).

Prints JSON lines:
{"bench": "relay_rtt", "impl": "toynic"|"qemu", "frame_size": N, "round_trips": R,
 "rtt_median_us": M, "rtt_p99_us": P, "ok": true}
{"bench": "relay_rtt", "ratio": "toynic/qemu median", "frame_size": N, "value": V}
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import time

from bench_relay import running_relay

from emu.testing import record

SIZES = (64, 590, 1514)
ROUND_TRIPS = 2000
WARMUP = 200
HEADER = struct.Struct(">I")


def recv_record(sock: socket.socket) -> bytes:
    buf = bytearray()
    need = 4
    while len(buf) < need:
        chunk = sock.recv(need - len(buf))
        if not chunk:
            raise ConnectionError("the relay closed a peer")
        buf += chunk
        if len(buf) == 4 and need == 4:
            need = 4 + HEADER.unpack_from(buf)[0]
    return bytes(buf[4:])


def measure(a: socket.socket, b: socket.socket, size: int) -> dict[str, object]:
    for sock in (a, b):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    frames = [i.to_bytes(4, "big") + bytes(size - 4) for i in range(ROUND_TRIPS + WARMUP)]
    ok = True
    rtts = []
    clock = time.perf_counter
    for i, frame in enumerate(frames):
        wire = record(frame)
        t0 = clock()
        a.sendall(wire)
        got = recv_record(b)
        b.sendall(wire)
        back = recv_record(a)
        if i >= WARMUP:
            rtts.append(clock() - t0)
        ok = ok and got == frame == back
    rtts.sort()
    return {"round_trips": ROUND_TRIPS,
            "rtt_median_us": round(rtts[len(rtts) // 2] * 1e6, 1),
            "rtt_p99_us": round(rtts[int(0.99 * len(rtts))] * 1e6, 1), "ok": ok}


def run_impl(impl: str) -> dict[int, dict[str, object]]:
    results = {}
    with running_relay(impl=impl) as (_, a, b):
        for size in SIZES:
            results[size] = measure(a, b, size)
            print(json.dumps({"bench": "relay_rtt", "impl": impl, "frame_size": size,
                              **results[size]}), flush=True)
    return results


def main() -> int:
    toynic = run_impl("toynic")
    if shutil.which("qemu-system-x86_64") is None:
        print(json.dumps({"bench": "relay_rtt", "impl": "qemu", "skipped": "qemu not installed"}))
        return 0 if all(r["ok"] for r in toynic.values()) else 1
    qemu = run_impl("qemu")
    for size in SIZES:
        ratio = toynic[size]["rtt_median_us"] / qemu[size]["rtt_median_us"]  # type: ignore[operator]
        print(json.dumps({"bench": "relay_rtt", "ratio": "toynic/qemu median",
                          "frame_size": size, "value": round(ratio, 3)}), flush=True)
    return 0 if all(r["ok"] for r in (*toynic.values(), *qemu.values())) else 1


if __name__ == "__main__":
    raise SystemExit(main())
