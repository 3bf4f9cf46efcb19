"""A real Linux pinging `pingd`: Debian's kernel and busybox in Debian's QEMU (x86_64,
TCG, its `ne2k_pci` on `-netdev socket,connect=`), toynic's `pingd` on the listening
end. The same guest, in the same run, also pings a minimal responder written in Python
on the same socket: that row is the floor the QEMU side sets (its emulated CPU and NIC),
and the difference between the two rows is what toynic adds.

The guest is built on first use from Debian packages (`apt-get download` of the
running kernel's image and of busybox-static, unpacked with `dpkg-deb`) into
`build/linux-guest/`: the kernel, and an initramfs with busybox, the 8390 and ne2k-pci
modules and an init that runs the pings the kernel command line names.

Prints JSON lines:
{"bench": "linux_ping", "responder": "pingd"|"python", "frame_size": S,
 "interval_s": I, "pings": N, "rtt_avg_us": A, "rtt_median_us": M, "rtt_max_us": X,
 "ok": true}
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emu.testing import ethernet, icmp_echo, ipv4

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build" / "linux-guest"
HOST = "127.0.0.1"
GUEST_IP = "10.0.0.2"
PINGD_IP = "10.0.0.1"
PINGD_MAC = bytes.fromhex("52540000000a")
# (ping -s data size, Ethernet frame size): 60 B and 1514 B frames.
SIZES = ((18, 60), (1472, 1514))
PINGS = 20
INTERVAL_S = 0.2
TIMEOUT_S = 180.0
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
insmod /lib/modules/8390.ko
insmod /lib/modules/ne2k-pci.ko
ip link set eth0 up
ip addr add {guest}/24 dev eth0
for arg in $(cat /proc/cmdline); do
  case $arg in pings=*) runs="${{arg#pings=}}";; esac
done
for run in $(echo "$runs" | tr ',' ' '); do
  set -- $(echo "$run" | tr ':' ' ')
  echo "RUN size=$3 count=$1 interval=$2"
  ping -c "$1" -i "$2" -s "$3" {pingd}
done
echo "ALL-DONE"
poweroff -f
"""


def _run(argv: list[str], cwd: Path) -> str:
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """An initramfs archive (cpio "newc"): (name, mode, data) entries."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], 1):
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out += b"070701" + "".join(f"{f:08x}" for f in fields).encode() + encoded
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def guest_image() -> tuple[Path, Path]:
    """The kernel and initramfs, built into CACHE on first use."""
    kernel, initrd = CACHE / "vmlinuz", CACHE / "initrd.gz"
    if kernel.exists() and initrd.exists():
        return kernel, initrd
    CACHE.mkdir(parents=True, exist_ok=True)
    depends = _run(["apt-cache", "depends", "linux-image-amd64"], CACHE)
    image = re.search(r"Depends: (linux-image-\S+)", depends)
    if image is None:
        raise RuntimeError("apt-cache names no kernel image for linux-image-amd64")
    _run(["apt-get", "download", image.group(1), "busybox-static"], CACHE)
    unpacked = CACHE / "unpacked"
    for deb in CACHE.glob("*.deb"):
        _run(["dpkg-deb", "-x", deb.name, str(unpacked)], CACHE)
    (kernel_file,) = unpacked.glob("boot/vmlinuz-*")
    drivers = "lib/modules/*/kernel/drivers/net/ethernet/8390/*.ko"
    modules = {p.name: p for p in unpacked.glob(drivers)}
    busybox = unpacked / "bin" / "busybox"
    init = INIT.format(guest=GUEST_IP, pingd=PINGD_IP).encode()
    dirs = [(d, 0o40755, b"") for d in ("bin", "proc", "lib", "lib/modules")]
    files = [("bin/busybox", 0o100755, busybox.read_bytes()), ("init", 0o100755, init),
             *[(f"lib/modules/{m}", 0o100644, modules[m].read_bytes())
               for m in ("8390.ko", "ne2k-pci.ko")]]
    initrd.write_bytes(gzip.compress(_cpio_newc(dirs + files), 1))
    kernel.write_bytes(kernel_file.read_bytes())
    return kernel, initrd


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
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "emu", "-kernel", str(REPO / "emu/guests/pingd.elf"),
         "-append", f"ip={PINGD_IP}",
         "-netdev", f"socket,id=n0,listen={HOST}:{port}",
         "-device", f"ne2k_isa,netdev=n0,mac={PINGD_MAC.hex(':')}"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        _wait_listening(port, proc)
        yield port
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10.0)


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Until toynic's socket listens on `port` (/proc/net/tcp lists it in state LISTEN)."""
    entry = f":{port:04X} 00000000:0000 0A"
    for _ in range(int(TIMEOUT_S / 0.05)):
        if proc.poll() is not None:
            raise RuntimeError(f"toynic exited with status {proc.returncode}")
        if entry in Path("/proc/net/tcp").read_text():
            return
        threading.Event().wait(0.05)
    raise RuntimeError("toynic never listened")


def linux_pings(port: int, kernel: Path, initrd: Path) -> str:
    runs = ",".join(f"{PINGS}:{INTERVAL_S}:{data}" for data, _ in SIZES)
    result = subprocess.run(
        ["qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot",
         "-kernel", str(kernel), "-initrd", str(initrd),
         "-append", f"console=ttyS0 quiet pings={runs}",
         "-netdev", f"socket,id=n,connect={HOST}:{port}", "-device", "ne2k_pci,netdev=n"],
        capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    return result.stdout


def parse(output: str, kind: str) -> list[dict[str, object]]:
    results = []
    for run in output.split("RUN ")[1:]:
        size = int(re.match(r"size=(\d+)", run).group(1))  # type: ignore[union-attr]
        times = [float(t) * 1000 for t in re.findall(r"seq=\d+ ttl=\d+ time=([\d.]+) ms", run)]
        frame = next(f for data, f in SIZES if data == size)
        # The first ping also waits for ARP; later ones measure the steady path.
        steady = sorted(times[1:])
        ok = len(times) == PINGS
        results.append({
            "bench": "linux_ping", "responder": kind, "frame_size": frame,
            "interval_s": INTERVAL_S, "pings": len(steady),
            "rtt_avg_us": round(sum(steady) / len(steady), 1) if steady else None,
            "rtt_median_us": round(steady[len(steady) // 2], 1) if steady else None,
            "rtt_max_us": round(steady[-1], 1) if steady else None, "ok": ok})
    return results


def main() -> int:
    kernel, initrd = guest_image()
    ok = True
    for kind in ("pingd", "python"):
        with responder(kind) as port:
            results = parse(linux_pings(port, kernel, initrd), kind)
        for result in results:
            print(json.dumps(result), flush=True)
            ok = ok and bool(result["ok"])
        ok = ok and len(results) == len(SIZES)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
