"""Relay throughput: toynic's hub relay between two `listen=` stream netdevs against QEMU's
(`qemu-system-x86_64 -machine none` with the same netdevs and hubports; QEMU: net/socket.c
+ net/hub.c), bulk, 64-, 590- and 1514-byte frames.

A sender process writes pre-built blobs of length-prefixed frames (each frame carries
its sequence number) with large sendall() calls for a fixed time; the receiver reads
with large recv_into() calls and compares every byte with the expected stream, so order,
loss and corruption are all checked without per-frame Python work on either peer.

Prints one JSON line per implementation and size (`relay_cpu`: the relay process's CPU
time over wall time; near 1.0 means the relay, not its peers, is the limit), then one
ratio line per size:
{"bench": "relay", "impl": "toynic"|"qemu", "frame_size": N, "frames_per_s": F,
 "frames": N, "relay_cpu": C, "ok": true}
{"bench": "relay", "ratio": "toynic/qemu", "frame_size": N, "value": R}
A first set of lines, impl "direct (peer ceiling)", wires the two peers straight to each
other: no relay can be measured above that.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from emu.testing import free_ports, record

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SIZES = (64, 590, 1514)
SECONDS = 2.5
BLOB_BYTES = 2 << 20
HEADER = struct.Struct(">I")


def relay_argv(impl: str, port_a: int, port_b: int) -> list[str]:
    netdevs = ["-netdev", f"socket,id=a,listen={HOST}:{port_a}",
               "-netdev", f"socket,id=b,listen={HOST}:{port_b}",
               "-netdev", "hubport,id=p0,hubid=0,netdev=a",
               "-netdev", "hubport,id=p1,hubid=0,netdev=b"]
    if impl == "toynic":
        return [sys.executable, "-m", "emu", *netdevs]
    qemu = shutil.which("qemu-system-x86_64")
    assert qemu is not None
    return [qemu, "-nodefaults", "-display", "none", "-machine", "none", *netdevs]


def connect_retry(port: int, deadline: float) -> socket.socket:
    """Connect as soon as the relay listens (refused until then)."""
    while True:
        try:
            sock = socket.create_connection((HOST, port), timeout=5.0)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            select.select([], [], [], 0.01)
            continue
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        return sock


def split_records(buf: bytearray) -> list[bytes]:
    out = []
    while len(buf) >= 4:
        (n,) = HEADER.unpack_from(buf)
        if len(buf) < 4 + n:
            break
        out.append(bytes(buf[4:4 + n]))
        del buf[:4 + n]
    return out


def synchronise(tx: socket.socket, rx: socket.socket, timeout: float = 15.0) -> None:
    """Probe until frames get through (the relay has accepted both peers), then align
    the receiver on a sync frame so no probe is left in flight."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("the relay never passed a probe frame")
        tx.sendall(record(b"probe"))
        if select.select([rx], [], [], 0.02)[0]:
            break
    token = b"sync" + os.urandom(8)
    tx.sendall(record(token))
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("the sync frame never arrived")
        if select.select([rx], [], [], 1.0)[0]:
            chunk = rx.recv(65536)
            if not chunk:
                raise ConnectionError("relay closed the receiver")
            buf += chunk
            if token in split_records(buf):
                assert not buf, "bytes after the sync frame"
                return


def make_blob(size: int) -> tuple[bytes, int]:
    count = max(1, BLOB_BYTES // (size + 4))
    filler = bytes(range(256)) * (size // 256 + 1)
    parts = []
    for i in range(count):
        frame = i.to_bytes(4, "big") + filler[: size - 4]
        parts.append(record(frame))
    return b"".join(parts), count


def sender(sock: socket.socket, blob: bytes, seconds: float, report: multiprocessing.Queue) -> None:
    end = time.monotonic() + seconds
    blobs = 0
    while time.monotonic() < end:
        sock.sendall(blob)
        blobs += 1
    report.put(blobs)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (is the relay saturated, or its peers?)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(tx: socket.socket, rx: socket.socket, size: int, pid: int) -> dict[str, object]:
    blob, per_blob = make_blob(size)
    expected = blob + blob
    report: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    proc = multiprocessing.get_context("fork").Process(
        target=sender, args=(tx, blob, SECONDS, report), daemon=True)
    buf = bytearray(len(blob))
    view = memoryview(buf)
    offset = 0
    received = 0
    total: int | None = None
    ok = True
    start = time.monotonic()
    cpu_start = cpu_seconds(pid)
    proc.start()
    last = start
    deadline = start + SECONDS + 30.0
    try:
        while total is None or received < total:
            if time.monotonic() > deadline:
                ok = False
                break
            if total is None and not report.empty():
                total = report.get() * len(blob)
            if not select.select([rx], [], [], 0.2)[0]:
                continue
            n = rx.recv_into(view, len(blob))
            if n == 0:
                ok = False
                break
            # bytes == bytes is a memcmp; memoryview == compares item by item.
            if buf[:n] != expected[offset:offset + n]:
                ok = False
                break
            received += n
            offset = (offset + n) % len(blob)
            last = time.monotonic()
    finally:
        proc.join(5.0)
        if proc.is_alive():
            proc.kill()
    elapsed = max(last - start, 1e-9)
    frames = received // len(blob) * per_blob + (offset // (size + 4))
    return {"frames": frames, "frames_per_s": round(frames / elapsed),
            "relay_cpu": round((cpu_seconds(pid) - cpu_start) / elapsed, 2),
            "ok": ok and total is not None and received == total}


def run_direct() -> None:
    """The peers wired straight to each other: the ceiling the peers themselves allow."""
    with socket.create_server((HOST, 0)) as listener:
        tx = connect_retry(listener.getsockname()[1], time.monotonic() + 5.0)
        rx, _ = listener.accept()
        with tx, rx:
            for size in SIZES:
                result = measure(tx, rx, size, os.getpid())
                del result["relay_cpu"]
                print(json.dumps({"bench": "relay", "impl": "direct (peer ceiling)",
                                  "frame_size": size, **result}), flush=True)


@contextlib.contextmanager
def running_relay(argv_tail: Sequence[str] = (),
                  impl: str = "toynic") -> Iterator[tuple[int, socket.socket, socket.socket]]:
    """Start a relay (`argv_tail` appended), connect both peers and synchronise them;
    yield (relay pid, sender, receiver); stop the relay by its PID afterwards."""
    port_a, port_b = free_ports(2)
    proc = subprocess.Popen([*relay_argv(impl, port_a, port_b), *argv_tail], cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15.0
        tx = connect_retry(port_a, deadline)
        rx = connect_retry(port_b, deadline)
        with tx, rx:
            synchronise(tx, rx)
            yield proc.pid, tx, rx
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10.0)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10.0)


def run_impl(impl: str) -> dict[int, dict[str, object]]:
    results = {}
    with running_relay(impl=impl) as (pid, tx, rx):
        for size in SIZES:
            results[size] = measure(tx, rx, size, pid)
            print(json.dumps({"bench": "relay", "impl": impl, "frame_size": size,
                              **results[size]}), flush=True)
    return results


def main() -> int:
    run_direct()
    toynic = run_impl("toynic")
    if shutil.which("qemu-system-x86_64") is None:
        print(json.dumps({"bench": "relay", "impl": "qemu", "skipped": "qemu not installed"}))
        return 0 if all(r["ok"] for r in toynic.values()) else 1
    qemu = run_impl("qemu")
    for size in SIZES:
        ratio = toynic[size]["frames_per_s"] / max(qemu[size]["frames_per_s"], 1)  # type: ignore[operator]
        print(json.dumps({"bench": "relay", "ratio": "toynic/qemu", "frame_size": size,
                          "value": round(ratio, 3)}), flush=True)
    return 0 if all(r["ok"] for r in (*toynic.values(), *qemu.values())) else 1


if __name__ == "__main__":
    raise SystemExit(main())
