"""Bare-metal test guests for the toynic board, assembled with tests.rvasm (QEMU's
tests/tcg bare-metal tests play this role): exit sequences on the board's power
device and the ELF wrapping `-kernel` loads."""

from __future__ import annotations

from pathlib import Path

from emu.board.layout import POWER_BASE, POWER_FAIL, POWER_PASS, UART_BASE
from emu.board.loader import build_elf
from tests.rvasm import Asm


def _park(asm: Asm) -> None:
    park = f"park{asm.pc:x}"
    asm.label(park)
    asm.j(park)


def power_off(asm: Asm, code: int = 0) -> None:
    """Append the exit sequence (uses t5, t6): POWER_PASS or POWER_FAIL | code << 16."""
    asm.li("t5", POWER_BASE)
    asm.li("t6", POWER_PASS if code == 0 else POWER_FAIL | code << 16)
    asm.sw("t6", "t5", 0)
    _park(asm)


def exit_with(asm: Asm, reg: str) -> None:
    """Append an exit whose status is the value of `reg` (uses t5, t6, and clobbers `reg`)."""
    asm.li("t5", POWER_BASE)
    asm.slli(reg, reg, 16)
    asm.li("t6", POWER_FAIL)
    asm.or_("t6", "t6", reg)
    asm.sw("t6", "t5", 0)
    _park(asm)


def write_guest(tmp_path: Path, asm: Asm, name: str = "guest.elf") -> Path:
    """`asm` as an ELF file in `tmp_path`, loaded at its base address."""
    path = tmp_path / name
    path.write_bytes(build_elf(asm.base, [(asm.base, asm.code())]))
    return path


def echo_line(asm: Asm) -> None:
    """Poll the UART and echo each byte until a newline, then power off with 0."""
    asm.li("s1", UART_BASE)
    asm.li("s2", ord("\n"))
    asm.label("poll")
    asm.lbu("t0", "s1", 5)
    asm.andi("t0", "t0", 1)
    asm.beq("t0", "zero", "poll")
    asm.lbu("t1", "s1", 0)
    asm.sb("t1", "s1", 0)
    asm.bne("t1", "s2", "poll")
    power_off(asm)
