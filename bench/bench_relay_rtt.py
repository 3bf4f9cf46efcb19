"""Relay latency: one frame in flight through a hub relay between two `listen=` stream
netdevs, toynic against QEMU 7.2 in the same run (QEMU: net/socket.c + net/hub.c).

Peer A sends a frame; peer B reads it whole and sends it back; A reads it whole: two
relay passes per round trip, no batch to make. The relays are started as in
bench_relay.py, both at once (an idle relay sleeps in its poll), and measured in turns:
for each size, `ROUNDS` rounds of toynic then QEMU, so a change in the machine's load
(other benchmarks share it) falls on both alike. A warm-up of `WARMUP` round trips per
relay and size is not counted; medians and p99s over all rounds follow for every size,
then one ratio line per size (below 1.0: toynic is faster).

Prints JSON lines:
{"bench": "relay_rtt", "impl": "toynic"|"qemu", "frame_size": N, "round_trips": R,
 "rtt_median_us": M, "rtt_p99_us": P, "ok": true}
{"bench": "relay_rtt", "ratio": "toynic/qemu median", "frame_size": N, "value": V}
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import struct
import time

from bench_relay import running_relay

from emu.testing import record

SIZES = (64, 590, 1514)
ROUND_TRIPS = 3000
ROUNDS = 6
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


def round_trips(a: socket.socket, b: socket.socket,
                frames: list[bytes]) -> tuple[list[float], bool]:
    """Each frame A → B → A; returns the round-trip times and whether all came back whole."""
    ok = True
    rtts = []
    clock = time.perf_counter
    for frame in frames:
        wire = record(frame)
        t0 = clock()
        a.sendall(wire)
        got = recv_record(b)
        b.sendall(wire)
        back = recv_record(a)
        rtts.append(clock() - t0)
        ok = ok and got == frame == back
    return rtts, ok


def summary(rtts: list[float], ok: bool) -> dict[str, object]:
    rtts = sorted(rtts)
    return {"round_trips": len(rtts),
            "rtt_median_us": round(rtts[len(rtts) // 2] * 1e6, 1),
            "rtt_p99_us": round(rtts[int(0.99 * len(rtts))] * 1e6, 1), "ok": ok}


def measure(peers: dict[str, tuple[socket.socket, socket.socket]],
            size: int) -> dict[str, dict[str, object]]:
    """Every relay in `peers` (impl → its two peers) at one size, in turns."""
    frames = [i.to_bytes(4, "big") + bytes(size - 4) for i in range(ROUND_TRIPS)]
    per_round = len(frames) // ROUNDS
    rtts: dict[str, list[float]] = {impl: [] for impl in peers}
    ok = dict.fromkeys(peers, True)
    for a, b in peers.values():
        round_trips(a, b, frames[:WARMUP])
    for start in range(0, per_round * ROUNDS, per_round):
        for impl, (a, b) in peers.items():
            times, whole = round_trips(a, b, frames[start:start + per_round])
            rtts[impl] += times
            ok[impl] = ok[impl] and whole
    return {impl: summary(rtts[impl], ok[impl]) for impl in peers}


def main() -> int:
    impls = ["toynic"]
    if shutil.which("qemu-system-x86_64") is None:
        print(json.dumps({"bench": "relay_rtt", "impl": "qemu", "skipped": "qemu not installed"}))
    else:
        impls.append("qemu")
    results: dict[int, dict[str, dict[str, object]]] = {}
    with contextlib.ExitStack() as stack:
        peers = {}
        for impl in impls:
            _, a, b = stack.enter_context(running_relay(impl=impl))
            for sock in (a, b):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peers[impl] = (a, b)
        for size in SIZES:
            results[size] = measure(peers, size)
    for impl in impls:
        for size in SIZES:
            print(json.dumps({"bench": "relay_rtt", "impl": impl, "frame_size": size,
                              **results[size][impl]}), flush=True)
    if "qemu" in impls:
        for size in SIZES:
            ratio = (results[size]["toynic"]["rtt_median_us"]  # type: ignore[operator]
                     / results[size]["qemu"]["rtt_median_us"])
            print(json.dumps({"bench": "relay_rtt", "ratio": "toynic/qemu median",
                              "frame_size": size, "value": round(ratio, 3)}), flush=True)
    return 0 if all(r["ok"] for by_impl in results.values() for r in by_impl.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
