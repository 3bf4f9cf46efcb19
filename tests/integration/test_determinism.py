"""Determinism: without host I/O the same guest gives the same output, instruction count
and timer-interrupt times on every run, whether idle time is slept (sleep=on) or skipped."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from emu.board.layout import CLINT_BASE, CLINT_MTIME, CLINT_MTIMECMP, RAM_BASE, UART_BASE
from emu.board.loader import build_elf
from emu.board.machine import Machine
from emu.core.loop import MainLoop
from tests.rvasm import Asm
from tests.rvguest import exit_with

ROOT = Path(__file__).resolve().parents[2]
HANDLER = RAM_BASE + 0x200
SAMPLES = RAM_BASE + 0x1000
TICKS = 12
PERIOD = 997


def timer_guest() -> bytes:
    """Busy counting interleaved with wfi; a timer handler logs mtime at each interrupt."""
    main = Asm()
    main.li("s0", CLINT_BASE + CLINT_MTIMECMP)
    main.li("s3", CLINT_BASE + CLINT_MTIME)
    main.li("s1", UART_BASE)
    main.li("s2", TICKS)
    main.li("s6", SAMPLES)
    main.li("t0", HANDLER)
    main.csrrw("zero", "mtvec", "t0")
    main.lw("t1", "s3", 0)
    main.addi("t1", "t1", PERIOD)
    main.li("t2", -1)
    main.sw("t2", "s0", 4)
    main.sw("t1", "s0", 0)
    main.sw("zero", "s0", 4)
    main.li("t0", 0x80)
    main.csrrs("zero", "mie", "t0")
    main.csrrsi("zero", "mstatus", 8)
    main.label("loop")
    main.addi("s5", "s5", 1)
    main.andi("t0", "s5", 0x1FF)
    main.bne("t0", "zero", "loop")
    main.csrrci("zero", "mstatus", 8)
    main.beq("s2", "zero", "done")
    main.wfi()
    main.csrrsi("zero", "mstatus", 8)
    main.j("loop")
    main.label("done")
    main.andi("a4", "s5", 0x7F)
    exit_with(main, "a4")

    handler = Asm(HANDLER)
    handler.lw("t1", "s3", 0)
    handler.sw("t1", "s6", 0)
    handler.addi("s6", "s6", 4)
    handler.li("t3", ord("T"))
    handler.sb("t3", "s1", 0)
    handler.addi("s2", "s2", -1)
    handler.addi("t1", "t1", PERIOD)
    handler.sw("t1", "s0", 0)
    handler.bne("s2", "zero", "ret")
    handler.li("t0", 0x80)
    handler.csrrc("zero", "mie", "t0")
    handler.label("ret")
    handler.mret()

    code = main.code()
    assert len(code) <= HANDLER - RAM_BASE
    return build_elf(RAM_BASE, [(RAM_BASE, code + bytes(HANDLER - RAM_BASE - len(code))
                                 + handler.code())])


def run_once(path: Path, *, sleep: bool, shift: int = 0, append: str = "") -> dict:
    loop = MainLoop()
    try:
        m = Machine(loop, ram_size=1 << 20, icount_shift=shift, icount_sleep=sleep,
                    console=io.BytesIO(), stderr=io.StringIO())
        m.load_kernel(str(path), append)
        status = m.run()
        samples = [m.ram.read(SAMPLES - RAM_BASE + 4 * i, 4) for i in range(TICKS)]
        return {"status": status, "instret": m.instret, "output": m.console.getvalue(),
                "samples": samples, "now": m.clock.now()}
    finally:
        loop.close()


@pytest.mark.parametrize("shift", [0, 3])
def test_python_timer_guest_is_deterministic(tmp_path: Path, shift: int) -> None:
    path = tmp_path / "timer.elf"
    path.write_bytes(timer_guest())
    first = run_once(path, sleep=False, shift=shift)
    again = run_once(path, sleep=False, shift=shift)
    slept = run_once(path, sleep=True, shift=shift)
    assert first["output"] == b"T" * TICKS
    assert first["samples"][0] > 0 and first["samples"] == sorted(first["samples"])
    # each interrupt is taken within a few instructions of its deadline
    step = 1 << shift
    for n, sample in enumerate(first["samples"]):
        deadline = first["samples"][0] if n == 0 else first["samples"][n - 1] + PERIOD
        assert 0 <= (sample - deadline) * 100 <= 20 * step + 100
    assert first == again == slept


def test_committed_timer_guest_is_deterministic() -> None:
    path = ROOT / "emu" / "guests" / "timer.elf"
    runs = [run_once(path, sleep=False, append="ticks=4 period=2"),
            run_once(path, sleep=False, append="ticks=4 period=2"),
            run_once(path, sleep=True, append="ticks=4 period=2")]
    assert runs[0]["status"] == 0
    assert runs[0]["output"].count(b"timer: tick ") == 4
    assert runs[0]["instret"] == runs[1]["instret"] == runs[2]["instret"]
    assert runs[0]["output"] == runs[1]["output"] == runs[2]["output"]
    assert runs[0]["now"] == runs[1]["now"] == runs[2]["now"]
