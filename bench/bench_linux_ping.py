"""A real Linux pinging `pingd`: Debian's kernel and busybox in Debian's QEMU (x86_64,
TCG, its `ne2k_pci` on `-netdev socket,connect=`), toynic's `pingd` on the listening
end. The same guest, in the same run, also pings a minimal responder written in Python
on the same socket: that row is the floor the QEMU side sets (its emulated CPU and NIC),
and the difference between the two rows is what toynic adds.

The guest is tests/linux_guest.py's (built on first use from Debian packages into
`build/linux-guest/`), as in tests/e2e/test_linux_ping.py. The pings are 0.2 s apart, so
toynic idles between them as it does under ping's default 1 s rhythm; the first ping of
each size, which also waits for ARP, is left out.

Prints JSON lines:
{"bench": "linux_ping", "responder": "pingd"|"python", "frame_size": S,
 "interval_s": I, "pings": N, "rtt_avg_us": A, "rtt_median_us": M, "rtt_max_us": X,
 "ok": true}
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emu.testing import ethernet, free_port, icmp_echo, ipv4

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.linux_guest import (  # noqa: E402 - the repository's root goes on the path first
    LinuxGuestUnavailable,
    PingResult,
    PingRun,
    guest_image,
    ping_results,
    qemu_argv,
)
from tests.netsupport import wait_listening  # noqa: E402

HOST = "127.0.0.1"
PINGD_IP = "10.0.0.1"
PINGD_MAC = bytes.fromhex("52540000000a")
# (ping -s data size, Ethernet frame size): 60 B and 1514 B frames.
SIZES = ((18, 60), (1472, 1514))
PINGS = 20
INTERVAL_S = 0.2
TIMEOUT_S = 180.0


def _reply(frame: bytes) -> bytes | None:
    """The floor responder's answer to an ARP request or ICMP echo request for PINGD_IP."""
    ip = bytes(map(int, PINGD_IP.split(".")))
    if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01" and frame[38:42] == ip:
        arp = b"\x00\x01\x08\x00\x06\x04\x00\x02" + PINGD_MAC + ip + frame[22:28] + frame[28:32]
        return ethernet(frame[6:12], PINGD_MAC, 0x0806, arp).ljust(60, b"\0")
    if frame[12:14] == b"\x08\x00" and frame[30:34] == ip and frame[23] == 1 and frame[34] == 8:
        header = (frame[14] & 15) * 4
        total = struct.unpack("!H", frame[16:18])[0]
        icmp = frame[14 + header:14 + total]
        (ident, seq) = struct.unpack("!HH", icmp[4:8])
        reply = icmp_echo(ident, seq, icmp[8:], reply=True)
        packet = ipv4(ip, frame[26:30], 1, reply)
        return ethernet(frame[6:12], PINGD_MAC, 0x0800, packet).ljust(60, b"\0")
    return None


def _python_responder(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    with conn:
        while data := conn.recv(65536):
            buffer += data
            while len(buffer) >= 4 and len(buffer) >= 4 + (n := struct.unpack("!I", buffer[:4])[0]):
                frame, buffer = buffer[4:4 + n], buffer[4 + n:]
                if (out := _reply(frame)) is not None:
                    conn.sendall(struct.pack("!I", len(out)) + out)


@contextmanager
def responder(kind: str) -> Iterator[int]:
    """A listening port with `kind` ("pingd" or "python") answering on it."""
    if kind == "python":
        listener = socket.create_server((HOST, 0))
        thread = threading.Thread(target=_python_responder, args=(listener,), daemon=True)
        thread.start()
        try:
            yield listener.getsockname()[1]
        finally:
            listener.close()
            thread.join(TIMEOUT_S)
        return
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emu", "-kernel", str(REPO / "emu/guests/pingd.elf"),
         "-append", f"ip={PINGD_IP}",
         "-netdev", f"socket,id=n0,listen={HOST}:{port}",
         "-device", f"ne2k_isa,netdev=n0,mac={PINGD_MAC.hex(':')}"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_listening(proc.pid, port)
        yield port
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10.0)


def linux_pings(port: int) -> list[PingResult]:
    runs = [PingRun(PINGS, INTERVAL_S, data) for data, _ in SIZES]
    argv = qemu_argv("qemu-system-x86_64", f"socket,connect={HOST}:{port}", PINGD_IP, runs)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S,
                            stdin=subprocess.DEVNULL, check=False)
    return ping_results(result.stdout)


def summary(result: PingResult, kind: str) -> dict[str, object]:
    frame = next(f for data, f in SIZES if data == result.data_size)
    # The first ping also waits for ARP; the others measure the steady path.
    steady = sorted(result.rtts_ms[1:])
    return {
        "bench": "linux_ping", "responder": kind, "frame_size": frame,
        "interval_s": INTERVAL_S, "pings": len(steady),
        "rtt_avg_us": round(sum(steady) / len(steady) * 1000, 1) if steady else None,
        "rtt_median_us": round(steady[len(steady) // 2] * 1000, 1) if steady else None,
        "rtt_max_us": round(steady[-1] * 1000, 1) if steady else None,
        "ok": result.received == PINGS}


def main() -> int:
    try:
        guest_image()
    except LinuxGuestUnavailable as exc:
        print(json.dumps({"bench": "linux_ping", "ok": False, "error": str(exc)}), flush=True)
        return 1
    ok = True
    for kind in ("pingd", "python"):
        with responder(kind) as port:
            results = [summary(result, kind) for result in linux_pings(port)]
        for result in results:
            print(json.dumps(result), flush=True)
            ok = ok and bool(result["ok"])
        ok = ok and len(results) == len(SIZES)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
