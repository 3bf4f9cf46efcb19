"""Echo round trips: a Python client ping-pongs frames with the `echo` guest over a stream
socket (QEMU: a guest behind `-netdev socket,...` answering a host peer, net/socket.c).

The client listens on 127.0.0.1 and toynic connects to it (`connect=`), so no port is
guessed. For each frame size the client sends one frame, waits for its echo (checked
byte for byte, MAC addresses swapped), and sends the next: one frame in flight, the
latency a request/response protocol sees. A warm-up of `WARMUP` round trips (guest
translation, host caches) is not counted.

Prints JSON lines:
{"bench": "echo_rtt", "frame_size": S, "round_trips": N, "rtt_median_us": M,
 "rtt_p99_us": P, "round_trips_per_s": R, "ok": true}
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SIZES = (60, 1514)
ROUND_TRIPS = 2000
WARMUP = 200
TIMEOUT = 10.0
GUEST_MAC = bytes.fromhex("525400000001")
CLIENT_MAC = bytes.fromhex("525400000002")
HEADER = struct.Struct(">I")


def recv_exact(sock: socket.socket, count: int) -> bytes:
    buf = bytearray()
    while len(buf) < count:
        chunk = sock.recv(count - len(buf))
        if not chunk:
            raise ConnectionError("toynic closed the connection")
        buf += chunk
    return bytes(buf)


def frame(size: int, seq: int) -> bytes:
    payload = seq.to_bytes(4, "big") + bytes((seq + i) & 0xFF for i in range(size - 18))
    return GUEST_MAC + CLIENT_MAC + b"\x88\xb5" + payload


def round_trip(sock: socket.socket, out: bytes) -> bool:
    sock.sendall(HEADER.pack(len(out)) + out)
    (length,) = HEADER.unpack(recv_exact(sock, 4))
    back = recv_exact(sock, length)
    return back == out[6:12] + out[:6] + out[12:]


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def measure(sock: socket.socket, size: int) -> dict[str, object]:
    ok = True
    frames = [frame(size, seq) for seq in range(ROUND_TRIPS + WARMUP)]
    for out in frames[:WARMUP]:
        ok = round_trip(sock, out) and ok
    rtts = []
    clock = time.perf_counter
    start = clock()
    for out in frames[WARMUP:]:
        t0 = clock()
        ok = round_trip(sock, out) and ok
        rtts.append(clock() - t0)
    elapsed = clock() - start
    rtts.sort()
    return {"bench": "echo_rtt", "frame_size": size, "round_trips": ROUND_TRIPS,
            "rtt_median_us": round(percentile(rtts, 0.5) * 1e6, 1),
            "rtt_p99_us": round(percentile(rtts, 0.99) * 1e6, 1),
            "round_trips_per_s": round(ROUND_TRIPS / elapsed, 1), "ok": ok}


@contextlib.contextmanager
def guest_on_socket(guest: str, append: str = "") -> Iterator[socket.socket]:
    """`guest` (a name in emu/guests) in toynic, its NE2000 on `-netdev socket` connected
    to a listener of ours: yields the accepted socket (TCP_NODELAY, with a timeout), and
    stops toynic by its PID afterwards."""
    with socket.create_server((HOST, 0)) as listener:
        port = listener.getsockname()[1]
        argv = [sys.executable, "-m", "emu", "-kernel", str(REPO / f"emu/guests/{guest}.elf"),
                *(["-append", append] if append else []),
                "-netdev", f"socket,id=n0,connect={HOST}:{port}",
                "-device", f"ne2k_isa,netdev=n0,mac={GUEST_MAC.hex(':')}"]
        proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL)
        try:
            listener.settimeout(TIMEOUT)
            sock, _ = listener.accept()
            with sock:
                sock.settimeout(TIMEOUT)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                yield sock
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10.0)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10.0)


def main() -> int:
    ok = True
    with guest_on_socket("echo") as sock:
        for size in SIZES:
            result = measure(sock, size)
            print(json.dumps(result), flush=True)
            ok = ok and bool(result["ok"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
