"""toynic's output files on a full disk, as a user meets it: the `-D` trace log and a
`filter-dump` pcap on /dev/full (ENOSPC at once) or on a small tmpfs that fills up
part-way (ENOSPC after N bytes). One line on stderr, the guest's exit status kept, the
pcap cut back to its last whole record, and no frame lost on the network side.

The tmpfs is mounted in a private mount namespace of the toynic process (`unshare -m`),
so this needs root; a missing capability fails the test rather than skipping it.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from emu.board.layout import ISA_BASE, NE2000_DEFAULT_IOBASE
from tests.netsupport import (
    Proc,
    connect,
    free_ports,
    pump,
    records,
    relay_args,
    toynic_argv,
    wait_accepted,
    wait_listening,
)
from tests.rvasm import Asm
from tests.rvguest import power_off, write_guest
from tests.unit.test_dump import pcap_records

NO_PEER_WARNING = "toynic: warning: nic ne2k_isa.0 has no peer"
IMR = 0x0F  # page 0: a write is one `ne2000_ioport_write` line of ~75 bytes
PCAP_RECORD_HEADER = 16


def on_small_disk(mountpoint: Path, size: int, *args: str) -> Proc:
    """toynic ARGS with a fresh tmpfs of `size` bytes on `mountpoint`, visible to toynic
    only (read its files through /proc/PID/root while it runs)."""
    script = 'mount -t tmpfs -o size="$1" toynic-test "$2" && shift 2 && exec "$@"'
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            str(size), str(mountpoint), *toynic_argv(*args)]
    return Proc(argv, name="toynic", env=dict(os.environ, PYTHONUNBUFFERED="1"))


def inside(proc: Proc, path: Path) -> Path:
    """`path` as `proc` sees it (its mount namespace)."""
    return Path(f"/proc/{proc.pid}/root") / path.relative_to("/")


def ioport_writer(tmp_path: Path, writes: int, status: int) -> Path:
    """A guest that writes the NE2000's IMR `writes` times, then exits with `status`."""
    asm = Asm()
    asm.li("s0", ISA_BASE + NE2000_DEFAULT_IOBASE)
    asm.li("s1", writes)
    asm.label("loop")
    asm.sb("zero", "s0", IMR)
    asm.addi("s1", "s1", -1)
    asm.bne("s1", "zero", "loop")
    power_off(asm, status)
    return write_guest(tmp_path, asm)


@pytest.mark.parametrize("disk", ["/dev/full", "tmpfs"])
def test_trace_log_on_a_full_disk_is_one_line_and_the_guest_status_is_kept(
        tmp_path: Path, disk: str) -> None:
    guest = ioport_writer(tmp_path, writes=2000, status=3)  # ~150 KB of trace lines
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    log = Path("/dev/full") if disk == "/dev/full" else mountpoint / "trace.log"
    args = ("-kernel", str(guest), "-device", "ne2k_isa", "-trace", "ne2000_ioport_write",
            "-D", str(log))
    # 16 KiB: about 200 lines fit, so tracing works for a while before the disk is full.
    with on_small_disk(mountpoint, 16 * 1024, *args) as proc:
        assert proc.wait(60) == 3, proc.describe()
        assert proc.stderr.splitlines() == [
            NO_PEER_WARNING,
            f"toynic: Error writing logfile {log}: No space left on device; "
            "trace output to it stopped"], proc.describe()


def test_pcap_on_a_full_disk_ends_on_a_whole_record_and_the_relay_loses_nothing(
        tmp_path: Path) -> None:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    pcap = mountpoint / "a.pcap"
    disk_size = 64 * 1024
    ports = free_ports(2)
    proc = on_small_disk(mountpoint, disk_size, *relay_args(*ports),
                         "-object", f"filter-dump,id=d0,netdev=a,file={pcap}")
    with proc, proc.closed_on_failure():
        for port in ports:
            wait_listening(proc.pid, port)
        a, b = connect(ports[0]), connect(ports[1])
        with a, b:
            for port, client in zip(ports, (a, b), strict=True):
                wait_accepted(proc.pid, port, client.getsockname()[1])
            rng = random.Random(12)
            # ~150 KB of records into a 64 KiB disk, in batches and one by one.
            frames = [rng.randbytes(rng.choice((60, 1514, rng.randrange(60, 1515))))
                      for _ in range(150)]
            assert pump({a: records(frames)}, {b: len(frames)}, timeout=60)[b] == frames
            raw = inside(proc, pcap).read_bytes()
            kept = pcap_records(raw)
            assert [data for _, _, _, data in kept] == frames[:len(kept)]
            # Cut back to the last whole record, not further: the next one did not fit.
            assert len(raw) + PCAP_RECORD_HEADER + len(frames[len(kept)]) > disk_size
            report = ["toynic: warning: hub 0 with no nics",
                      f"toynic: filter-dump d0: write to {pcap} failed: No space left on "
                      "device; dump stopped after the last whole record"]
            assert proc.stderr.splitlines() == report
            # The relay goes on in both directions; the dump stays stopped and quiet.
            back = [rng.randbytes(1514) for _ in range(50)]
            assert pump({b: records(back)}, {a: len(back)}, timeout=60)[a] == back
            assert pump({a: records(frames)}, {b: len(frames)}, timeout=60)[b] == frames
            assert inside(proc, pcap).read_bytes() == raw
        assert proc.stop() == 0
        assert proc.stderr.splitlines() == report
