"""Trap causes and the exceptions carrying them — QEMU's RISCV_EXCP_* (target/riscv/cpu_bits.h).

`Trap` is internal: the interpreter and translated code raise it at the faulting
instruction, and the Cpu turns it into a precise machine-mode trap. `GuestFault` leaves
`Cpu.run()` when a trap has no handler (mtvec == 0), so the machine can report it.
"""

from __future__ import annotations

INSN_MISALIGNED = 0
INSN_ACCESS_FAULT = 1
ILLEGAL_INSN = 2
BREAKPOINT = 3
LOAD_ACCESS_FAULT = 5
STORE_ACCESS_FAULT = 7
ECALL_M = 11

INTERRUPT = 1 << 31
IRQ_M_SOFT = 3
IRQ_M_TIMER = 7
IRQ_M_EXT = 11

CAUSE_NAMES = {
    INSN_MISALIGNED: "instruction address misaligned",
    INSN_ACCESS_FAULT: "instruction access fault",
    ILLEGAL_INSN: "illegal instruction",
    BREAKPOINT: "breakpoint",
    4: "load address misaligned",
    LOAD_ACCESS_FAULT: "load access fault",
    6: "store address misaligned",
    STORE_ACCESS_FAULT: "store access fault",
    ECALL_M: "environment call from M-mode",
    INTERRUPT | IRQ_M_SOFT: "machine software interrupt",
    INTERRUPT | IRQ_M_TIMER: "machine timer interrupt",
    INTERRUPT | IRQ_M_EXT: "machine external interrupt",
}


def cause_name(cause: int) -> str:
    return CAUSE_NAMES.get(cause, f"cause {cause:#x}")


class Trap(Exception):
    """A synchronous exception raised by the instruction at `epc`."""

    def __init__(self, cause: int, tval: int, epc: int) -> None:
        super().__init__(cause, tval, epc)
        self.cause = cause
        self.tval = tval
        self.epc = epc


class GuestFault(Exception):
    """A trap the guest has no handler for (mtvec == 0): the run cannot continue."""

    def __init__(self, cause: int, pc: int, mtval: int) -> None:
        super().__init__(f"{cause_name(cause)} at pc={pc:#010x} mtval={mtval:#010x}")
        self.cause = cause
        self.pc = pc
        self.mtval = mtval
