"""A real Linux that pings: Debian's kernel and busybox in Debian's QEMU (x86_64, TCG), its
`ne2k_pci` on a `-netdev` the caller gives. tests/e2e/test_linux_ping.py and
bench/bench_linux_ping.py point it at `pingd`.

The guest is built on first use from Debian packages — `apt-get download` of the kernel
image `linux-image-amd64` depends on, and of busybox-static, unpacked with `dpkg-deb` —
into `build/linux-guest/`, which keeps only the result: the kernel, and an initramfs
holding busybox, the 8390 and ne2k-pci modules and an init that configures eth0, runs the
pings the kernel command line names (`pings=COUNT:INTERVAL:SIZE,...`), prints
`PINGS-DONE` and powers off.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build" / "linux-guest"
GUEST_IP = "10.0.0.2"
GUEST_MAC = "52:54:00:00:00:22"
DONE = "PINGS-DONE"
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
insmod /lib/modules/8390.ko
insmod /lib/modules/ne2k-pci.ko
ip link set eth0 up
ip addr add {guest}/24 dev eth0
for arg in $(cat /proc/cmdline); do
  case $arg in pings=*) runs="${{arg#pings=}}";; target=*) target="${{arg#target=}}";; esac
done
for run in $(echo "$runs" | tr ',' ' '); do
  set -- $(echo "$run" | tr ':' ' ')
  echo "RUN size=$3"
  ping -c "$1" -i "$2" -s "$3" "$target"
done
echo "{done}"
poweroff -f
"""
APT_TIMEOUT_S = 300.0


class LinuxGuestUnavailable(RuntimeError):
    """The guest could not be built (no apt, no Debian mirror, a package changed shape)."""


class PingRun(NamedTuple):
    count: int
    interval_s: float
    data_size: int  # ping -s: ICMP data bytes; the frame is 42 more


class PingResult(NamedTuple):
    data_size: int
    sent: int
    received: int
    rtts_ms: list[float]  # in the order ping printed them


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, cwd=CACHE, check=True, capture_output=True, text=True,
                              timeout=APT_TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise LinuxGuestUnavailable(f"{' '.join(argv)}: {exc}") from exc


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """An initramfs archive in the kernel's cpio "newc" format: (name, mode, data)."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], 1):
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out += b"070701" + "".join(f"{f:08x}" for f in fields).encode() + encoded
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def guest_image() -> tuple[Path, Path]:
    """The kernel and the initramfs, built into CACHE the first time."""
    kernel, initrd = CACHE / "vmlinuz", CACHE / "initrd.gz"
    if kernel.exists() and initrd.exists():
        return kernel, initrd
    CACHE.mkdir(parents=True, exist_ok=True)
    image = re.search(r"Depends: (linux-image-\S+)",
                      _run(["apt-cache", "depends", "linux-image-amd64"]))
    if image is None:
        raise LinuxGuestUnavailable("apt-cache names no kernel image for linux-image-amd64")
    _run(["apt-get", "download", image.group(1), "busybox-static"])
    unpacked = CACHE / "unpacked"
    for deb in sorted(CACHE.glob("*.deb")):
        _run(["dpkg-deb", "-x", deb.name, str(unpacked)])
    kernels = sorted(unpacked.glob("boot/vmlinuz-*"))
    drivers = "lib/modules/*/kernel/drivers/net/ethernet/8390/*.ko"
    modules = {path.name: path for path in unpacked.glob(drivers)}
    busybox = unpacked / "bin" / "busybox"
    if not kernels or not busybox.exists() or not {"8390.ko", "ne2k-pci.ko"} <= set(modules):
        raise LinuxGuestUnavailable(f"the unpacked packages in {unpacked} lack a kernel, "
                                    "busybox or the ne2k-pci modules")
    init = INIT.format(guest=GUEST_IP, done=DONE).encode()
    entries = [(d, 0o40755, b"") for d in ("bin", "proc", "lib", "lib/modules")]
    entries += [("bin/busybox", 0o100755, busybox.read_bytes()), ("init", 0o100755, init)]
    entries += [(f"lib/modules/{name}", 0o100644, modules[name].read_bytes())
                for name in ("8390.ko", "ne2k-pci.ko")]
    # Written under other names and renamed: a build cut short leaves no half image.
    initrd.with_suffix(".tmp").write_bytes(gzip.compress(_cpio_newc(entries), 1))
    kernel.with_suffix(".tmp").write_bytes(kernels[-1].read_bytes())
    initrd.with_suffix(".tmp").rename(initrd)
    kernel.with_suffix(".tmp").rename(kernel)
    # The packages unpack to some 400 MB, of which the guest needs 10.
    shutil.rmtree(unpacked)
    for deb in CACHE.glob("*.deb"):
        deb.unlink()
    return kernel, initrd


def qemu_argv(qemu: str, netdev: str, target: str, runs: list[PingRun]) -> list[str]:
    """QEMU running the guest: `netdev` is a -netdev's options after its type and id
    (`socket,connect=...` gives `-netdev socket,id=n,connect=...`); `target` is the
    address it pings."""
    kernel, initrd = guest_image()
    kind, _, options = netdev.partition(",")
    pings = ",".join(f"{r.count}:{r.interval_s}:{r.data_size}" for r in runs)
    return [qemu, "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot", "-nodefaults",
            "-serial", "stdio", "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", f"console=ttyS0 quiet pings={pings} target={target}",
            "-netdev", f"{kind},id=n,{options}", "-device", f"ne2k_pci,netdev=n,mac={GUEST_MAC}"]


def ping_results(console: str) -> list[PingResult]:
    """What each run's ping printed, from the guest's console."""
    results = []
    for run in console.split("RUN size=")[1:]:
        size = int(run.split(None, 1)[0])
        summary = re.search(r"(\d+) packets transmitted, (\d+) packets received", run)
        sent, received = (int(summary.group(1)), int(summary.group(2))) if summary else (0, 0)
        rtts = [float(t) for t in re.findall(r"seq=\d+ ttl=\d+ time=([\d.]+) ms", run)]
        results.append(PingResult(size, sent, received, rtts))
    return results
