"""Machine-mode CSR file — QEMU's target/riscv/csr.c, cut down to what an M-only RV32IM hart has.

The CSR values live on the `Cpu` (the hot paths read mstatus/mie/mip directly); this
module knows which numbers exist, which bits are writable, and how the counters are
derived: cycle and instret both count retired instructions, time is the machine's mtime.
A CSR write to mcycle/minstret (either half) is what the next instruction reads: it
replaces the writing instruction's own increment (Zicsr).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emu.cpu.cpu import Cpu

MSTATUS_MIE = 1 << 3
MSTATUS_MPIE = 1 << 7
MSTATUS_MPP = 3 << 11  # only M-mode exists, so MPP always reads as M (0b11)

MIP_MSIP = 1 << 3
MIP_MTIP = 1 << 7
MIP_MEIP = 1 << 11
MIE_MASK = MIP_MSIP | MIP_MTIP | MIP_MEIP

MISA_RV32IM = (1 << 30) | (1 << 8) | (1 << 12)

CYCLE, TIME, INSTRET = 0xC00, 0xC01, 0xC02
CYCLEH, TIMEH, INSTRETH = 0xC80, 0xC81, 0xC82
MVENDORID, MARCHID, MIMPID, MHARTID = 0xF11, 0xF12, 0xF13, 0xF14
MSTATUS, MISA, MIE, MTVEC, MSTATUSH = 0x300, 0x301, 0x304, 0x305, 0x310
MSCRATCH, MEPC, MCAUSE, MTVAL, MIP = 0x340, 0x341, 0x342, 0x343, 0x344
MCYCLE, MINSTRET, MCYCLEH, MINSTRETH = 0xB00, 0xB02, 0xB80, 0xB82

_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1


def is_read_only(num: int) -> bool:
    """CSR numbers 0xC00-0xFFF are read-only by their encoding (priv spec, 2.1)."""
    return (num >> 10) == 3


def read(cpu: Cpu, num: int) -> int | None:
    """The CSR's value, or None if this hart has no such CSR."""
    if num == MSTATUS:
        return (cpu.mstatus & (MSTATUS_MIE | MSTATUS_MPIE)) | MSTATUS_MPP
    if num == MIE:
        return cpu.mie
    if num == MIP:
        return cpu.mip
    if num == MTVEC:
        return cpu.mtvec
    if num == MEPC:
        return cpu.mepc
    if num == MCAUSE:
        return cpu.mcause
    if num == MTVAL:
        return cpu.mtval
    if num == MSCRATCH:
        return cpu.mscratch
    if num == MISA:
        return MISA_RV32IM
    if num in (MVENDORID, MARCHID, MIMPID, MHARTID, MSTATUSH):
        return 0
    if num in (CYCLE, MCYCLE, CYCLEH, MCYCLEH):
        value = cpu.instret + cpu.cycle_offset
    elif num in (INSTRET, MINSTRET, INSTRETH, MINSTRETH):
        value = cpu.instret + cpu.instret_offset
    elif num in (TIME, TIMEH):
        value = cpu.read_mtime()
    else:
        return None
    return (value >> 32) & _M32 if num & 0x080 else value & _M32


def write(cpu: Cpu, num: int, value: int) -> bool:
    """Write a CSR (WARL: unwritable bits keep their value); False if it does not exist."""
    value &= _M32
    if num == MSTATUS:
        cpu.mstatus = value & (MSTATUS_MIE | MSTATUS_MPIE)
    elif num == MIE:
        cpu.mie = value & MIE_MASK
    elif num == MTVEC:
        # Modes 0 (direct) and 1 (vectored) exist; reserved modes fall back to direct.
        cpu.mtvec = value & ~3 if value & 3 > 1 else value
    elif num == MEPC:
        cpu.mepc = value & ~3
    elif num == MCAUSE:
        cpu.mcause = value
    elif num == MTVAL:
        cpu.mtval = value
    elif num == MSCRATCH:
        cpu.mscratch = value
    elif num in (MCYCLE, MCYCLEH):
        cpu.cycle_offset = _counter_offset(cpu, cpu.cycle_offset, num, value)
    elif num in (MINSTRET, MINSTRETH):
        cpu.instret_offset = _counter_offset(cpu, cpu.instret_offset, num, value)
    elif num in (MIP, MISA, MSTATUSH):
        pass  # the pending bits are driven by hardware; misa is fixed
    else:
        return False
    cpu.update_attention()
    return True


def _counter_offset(cpu: Cpu, offset: int, num: int, value: int) -> int:
    """The offset that makes the counter read `value` in its written half from the next
    instruction on. The writing CSR instruction has not retired yet and its retirement
    adds 1 to `instret`: Zicsr says the write is done instead of that increment (a write
    of either half counts), so the offset takes it back."""
    current = (cpu.instret + offset) & _M64
    new = (value << 32) | (current & _M32) if num & 0x080 else (current & ~_M32) | value
    return new - cpu.instret - 1
