"""`-object filter-dump` as a user runs it, with a guest that moves virtual time far
ahead: `-icount sleep=off` jumps the clock to the guest's timer deadline at once, so a
pcap record can carry a time past 2038 (signed 32-bit seconds) and past 2106 (unsigned).
The seconds are written modulo 2**32 and the machine keeps running."""

from __future__ import annotations

import time
from pathlib import Path

from emu.board.layout import CLINT_BASE, CLINT_MTIMECMP, RAM_BASE, TIMEBASE_HZ, UART_BASE
from emu.board.loader import build_elf
from emu.cpu.csr import MIP_MTIP
from tests.netsupport import connect, free_port, record, start_toynic, wait_for, wait_listening
from tests.rvasm import Asm
from tests.unit.test_dump import YEAR_S, pcap_records

JUMP_S = 100 * YEAR_S
PCAP_HEADER = 24


def time_jumper(tmp_path: Path) -> Path:
    """A guest that sleeps until virtual time JUMP_S, prints "jumped", then idles with no
    timer armed (so its clock stands still there)."""
    deadline = JUMP_S * TIMEBASE_HZ
    asm = Asm()
    asm.li("s0", CLINT_BASE + CLINT_MTIMECMP)
    asm.li("t0", -1)
    asm.sw("t0", "s0", 4)  # high word first: no early match while the low word changes
    asm.li("t0", deadline & 0xFFFF_FFFF)
    asm.sw("t0", "s0", 0)
    asm.li("t0", deadline >> 32)
    asm.sw("t0", "s0", 4)
    asm.li("t0", MIP_MTIP)
    asm.csrrs("zero", "mie", "t0")  # wfi wakes on the timer; mstatus.MIE is off: no trap
    asm.label("wait")
    asm.wfi()
    asm.csrrs("t1", "mip", "zero")
    asm.andi("t1", "t1", MIP_MTIP)
    asm.beq("t1", "zero", "wait")
    asm.csrrc("zero", "mie", "t0")
    asm.li("s1", UART_BASE)
    for ch in b"jumped\n":
        asm.li("t2", ch)
        asm.sb("t2", "s1", 0)
    asm.label("idle")
    asm.wfi()
    asm.j("idle")
    path = tmp_path / "jumper.elf"
    path.write_bytes(build_elf(RAM_BASE, [(RAM_BASE, asm.code())]))
    return path


def test_a_frame_stamped_100_virtual_years_ahead_wraps_and_the_machine_runs_on(
        tmp_path: Path) -> None:
    pcap = tmp_path / "late.pcap"
    port = free_port()
    frame = bytes.fromhex("ffffffffffff525400000001") + b"\x88\xb5" + bytes(range(46))
    before = int(time.time())
    proc = start_toynic("-kernel", str(time_jumper(tmp_path)), "-icount", "shift=0,sleep=off",
                        "-netdev", f"socket,id=n0,listen=127.0.0.1:{port}",
                        "-device", "ne2k_isa,netdev=n0",
                        "-object", f"filter-dump,id=d0,netdev=n0,file={pcap}")
    with proc, proc.closed_on_failure():
        wait_for(lambda: "jumped" in proc.stdout or not proc.alive(), timeout=30,
                 what="the guest's time jump")
        wait_listening(proc.pid, port)
        with connect(port) as peer:
            peer.sendall(record(frame))
            wait_for(lambda: pcap.stat().st_size > PCAP_HEADER or proc.stderr
                     or not proc.alive(), timeout=30, what="the frame's pcap record")
        after = int(time.time())
        assert proc.alive() and proc.stderr == "", proc.describe()
        assert proc.stop() == 0
        assert proc.stdout == "jumped\n"
        assert proc.stderr == ""
    ((sec, usec, length, data),) = pcap_records(pcap.read_bytes())
    assert (length, data) == (len(frame), frame)
    # The stamp is the filter's wall-clock start second plus the virtual time, mod 2**32.
    assert before <= (sec - JUMP_S) % 2**32 <= after
    assert usec < 1_000
