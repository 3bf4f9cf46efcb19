"""Traps, mret, wfi, interrupts, MMIO slow paths, fence.i and budget accounting."""

from __future__ import annotations

import pytest

from emu.core.bus import Bus, Ram
from emu.cpu.cpu import Cpu, GuestFault
from emu.cpu.csr import MIP_MEIP, MIP_MSIP, MIP_MTIP
from tests.rvasm import Asm, boot, i_type, r_type

RAM = 0x8000_0000
MMIO = 0x1000_0000


@pytest.fixture(params=[False, True], ids=["interp", "translate"])
def translate(request: pytest.FixtureRequest) -> bool:
    return request.param


def with_handler() -> Asm:
    """A program that installs `handler` (which stops in wfi) as mtvec, then continues."""
    asm = Asm()
    asm.la("t6", "handler")
    asm.csrrw("zero", "mtvec", "t6")
    return asm


def add_handler(asm: Asm) -> None:
    asm.label("handler")
    asm.wfi()


def add_spin_handler(asm: Asm) -> None:
    """For interrupts, which stay pending (so wfi would not wait): spin in place."""
    asm.label("handler")
    asm.j(asm.pc)


def run(asm: Asm, translate: bool, budget: int = 10_000, **kw: object) -> Cpu:
    cpu = boot(asm, translate=translate, **kw)  # type: ignore[arg-type]
    cpu.run(budget)
    return cpu


def test_ecall(translate: bool) -> None:
    asm = with_handler()
    asm.nop()
    epc = asm.pc
    asm.ecall()
    add_handler(asm)
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (11, epc, 0)
    assert cpu.pc == asm.labels["handler"] + 4
    assert cpu.instret == 5  # la (2), csrw, nop, then the handler's wfi: ecall does not retire
    assert cpu.waiting


def test_ebreak(translate: bool) -> None:
    asm = with_handler()
    epc = asm.pc
    asm.ebreak()
    add_handler(asm)
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc) == (3, epc)


@pytest.mark.parametrize("word", [
    0x00000000, 0xFFFFFFFF,
    r_type(0x13, 1, 1, 10, 11, 1),  # slli with shamt[5] set: reserved in RV32
    r_type(0x33, 0, 0x10, 10, 11, 12),  # unknown funct7
    i_type(0x03, 3, 10, 11, 0),  # ld: RV64 only
    0x10200073,  # sret: no S-mode
    0x00000007,  # a floating-point load: no F extension
    0x7C002573,  # csrr a0, 0x7c0: no such CSR
    0xF1459073,  # csrw mhartid, a1: read-only CSR
    0x0001,  # a compressed instruction: no C extension
])
def test_illegal_instruction(translate: bool, word: int) -> None:
    asm = with_handler()
    asm.li("a0", 77)
    epc = asm.pc
    asm.word(word)
    add_handler(asm)
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (2, epc, word)
    assert cpu.x[10] == 77


def test_misaligned_jal(translate: bool) -> None:
    asm = with_handler()
    epc = asm.pc
    asm.jal("ra", epc + 6)
    add_handler(asm)
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (0, epc, epc + 6)
    assert cpu.x[1] == 0, "a jump that traps must not write its link register"


def test_misaligned_branch_only_when_taken(translate: bool) -> None:
    asm = with_handler()
    asm.bne("zero", "zero", asm.pc + 2)  # not taken: no trap
    asm.li("a0", 1)
    epc = asm.pc
    asm.beq("zero", "zero", epc + 2)
    add_handler(asm)
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (0, epc, epc + 2)
    assert cpu.x[10] == 1


def test_misaligned_jalr(translate: bool) -> None:
    asm = with_handler()
    asm.li("a1", RAM + 0x102)
    epc = asm.pc
    asm.jalr("ra", "a1", 0)
    add_handler(asm)
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (0, epc, RAM + 0x102)
    assert cpu.x[1] == 0


@pytest.mark.parametrize(("op", "cause"), [("lw", 5), ("lbu", 5), ("lh", 5), ("sw", 7), ("sb", 7)])
@pytest.mark.parametrize("addr", [0x0, 0x2000_0000, RAM + 0x10000, RAM - 1, 0xFFFFFFFF])
def test_access_faults_are_precise(translate: bool, op: str, cause: int, addr: int) -> None:
    asm = with_handler()
    asm.li("a1", addr)
    asm.li("a0", 5)
    asm.addi("a0", "a0", 1)
    epc = asm.pc
    getattr(asm, op)("a0", "a1", 0)
    asm.li("a0", 99)
    add_handler(asm)
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (cause, epc, addr)
    assert cpu.x[10] == 6, "the faulting load must not write rd; later code must not run"
    retired_before = (epc - RAM) // 4
    assert cpu.instret == retired_before + 1  # + the handler's wfi


@pytest.mark.parametrize(("op", "cause", "addr"), [
    ("lw", 5, RAM + 0x10000 - 2), ("lh", 5, RAM + 0x10000 - 1), ("sw", 7, RAM + 0x10000 - 3),
    ("sh", 7, RAM + 0x10000 - 1),
])
def test_access_straddling_the_end_of_ram_faults(
        translate: bool, op: str, cause: int, addr: int) -> None:
    asm = with_handler()
    asm.li("a1", addr)
    epc = asm.pc
    getattr(asm, op)("a0", "a1", 0)
    add_handler(asm)
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (cause, epc, addr)


def test_fetch_outside_ram(translate: bool) -> None:
    asm = with_handler()
    asm.li("a1", 0x2000)
    asm.jalr("ra", "a1", 0)
    add_handler(asm)
    cpu = run(asm, translate)
    assert (cpu.mcause, cpu.mepc, cpu.mtval) == (1, 0x2000, 0x2000)


def test_no_handler_raises_guest_fault(translate: bool) -> None:
    asm = Asm()
    asm.nop()
    asm.word(0xFFFFFFFF)
    cpu = boot(asm, translate=translate)
    with pytest.raises(GuestFault) as info:
        cpu.run(100)
    assert (info.value.cause, info.value.pc, info.value.mtval) == (2, RAM + 4, 0xFFFFFFFF)
    assert "illegal instruction" in str(info.value)
    assert cpu.instret == 1


def test_mret_resumes_and_restores_mie(translate: bool) -> None:
    asm = with_handler()
    asm.csrrsi("zero", "mstatus", 8)  # MIE=1
    asm.ecall()
    asm.csrrs("a1", "mstatus", "zero")
    asm.wfi()
    asm.label("handler")
    asm.csrrs("a0", "mstatus", "zero")
    asm.csrrs("t0", "mepc", "zero")
    asm.addi("t0", "t0", 4)
    asm.csrrw("zero", "mepc", "t0")
    asm.mret()
    cpu = run(asm, translate)
    assert cpu.waiting
    assert cpu.x[10] & 0x88 == 0x80, "in the handler: MIE=0, MPIE=1"
    assert cpu.x[11] & 0x88 == 0x88, "after mret: MIE restored from MPIE, MPIE=1"
    assert cpu.x[11] & 0x1800 == 0x1800, "MPP reads as M"


def irq_program(mie: int, global_enable: bool = True, vectored: bool = False) -> Asm:
    asm = with_handler()
    if vectored:
        asm.csrrsi("zero", "mtvec", 1)
    asm.li("t0", mie)
    asm.csrrw("zero", "mie", "t0")
    if global_enable:
        asm.csrrsi("zero", "mstatus", 8)
    asm.label("spin")
    asm.addi("a0", "a0", 1)
    asm.j("spin")
    asm.label("handler")
    for _ in range(16):  # vectored entries: each spins in place
        asm.j(asm.pc)
    return asm


@pytest.mark.parametrize(("pending", "cause"), [
    (MIP_MTIP, 7), (MIP_MSIP, 3), (MIP_MEIP, 11),
    (MIP_MTIP | MIP_MSIP, 3), (MIP_MTIP | MIP_MEIP, 11), (MIP_MEIP | MIP_MSIP | MIP_MTIP, 11),
])
def test_interrupt_priority(translate: bool, pending: int, cause: int) -> None:
    cpu = boot(irq_program(MIP_MEIP | MIP_MSIP | MIP_MTIP), translate=translate)
    assert cpu.run(200) == 200
    assert not cpu.waiting
    spin = cpu.pc
    cpu.set_irq(pending, True)
    cpu.run(10)
    assert cpu.mcause == 0x80000000 | cause
    assert cpu.mepc == spin
    assert cpu.mstatus & 0x88 == 0x80


def test_interrupt_mepc_is_next_instruction(translate: bool) -> None:
    cpu = boot(irq_program(MIP_MTIP), translate=translate)
    cpu.run(101)
    pc, count = cpu.pc, cpu.x[10]
    cpu.set_irq(MIP_MTIP, True)
    cpu.run(10)
    assert cpu.mepc == pc
    assert cpu.x[10] == count


@pytest.mark.parametrize(("mie", "global_enable"), [(MIP_MEIP, True), (MIP_MTIP, False)])
def test_masked_interrupt_not_taken(translate: bool, mie: int, global_enable: bool) -> None:
    cpu = boot(irq_program(mie, global_enable), translate=translate)
    cpu.set_irq(MIP_MTIP, True)
    assert cpu.run(500) == 500
    assert cpu.mcause == 0
    assert cpu.mip == MIP_MTIP


def test_vectored_interrupt(translate: bool) -> None:
    asm = irq_program(MIP_MTIP, vectored=True)
    cpu = boot(asm, translate=translate)
    cpu.set_irq(MIP_MTIP, True)
    cpu.run(100)
    assert cpu.mcause == 0x80000007
    assert cpu.pc == asm.labels["handler"] + 4 * 7


def test_wfi_idles_until_interrupt_and_resumes_after_it(translate: bool) -> None:
    asm = Asm()
    asm.li("t0", MIP_MTIP)
    asm.csrrw("zero", "mie", "t0")  # enabled in mie, but MIE=0: wfi wakes without a trap
    asm.wfi()
    asm.li("a0", 42)
    asm.wfi()
    cpu = boot(asm, translate=translate)
    assert cpu.run(1000) == 3
    assert cpu.waiting
    assert cpu.run(1000) == 0
    cpu.set_irq(MIP_MEIP, True)  # not enabled in mie: still asleep
    assert cpu.waiting
    cpu.set_irq(MIP_MTIP, True)
    assert not cpu.waiting
    cpu.set_irq(MIP_MTIP, False)
    assert cpu.run(1000) == 2
    assert cpu.x[10] == 42
    assert cpu.waiting


def test_wfi_wakes_into_handler_when_enabled(translate: bool) -> None:
    asm = with_handler()
    asm.li("t0", MIP_MTIP)
    asm.csrrw("zero", "mie", "t0")
    asm.csrrsi("zero", "mstatus", 8)
    wfi_pc = asm.pc
    asm.wfi()
    asm.li("a0", 1)
    add_spin_handler(asm)
    cpu = boot(asm, translate=translate)
    cpu.run(1000)
    assert cpu.waiting and cpu.pc == wfi_pc + 4
    cpu.set_irq(MIP_MTIP, True)
    cpu.run(1000)
    assert (cpu.mcause, cpu.mepc) == (0x80000007, wfi_pc + 4)
    assert cpu.x[10] == 0


def test_wfi_with_pending_enabled_interrupt_does_not_wait(translate: bool) -> None:
    asm = Asm()
    asm.li("t0", MIP_MSIP)
    asm.csrrw("zero", "mie", "t0")
    asm.wfi()
    asm.li("a0", 1)
    asm.j(asm.pc)
    cpu = boot(asm, translate=translate)
    cpu.set_irq(MIP_MSIP, True)
    cpu.run(50)
    assert not cpu.waiting
    assert cpu.x[10] == 1


class Doorbell:
    """An MMIO register whose write raises MSIP or asks the CPU to stop."""

    def __init__(self) -> None:
        self.cpu: Cpu | None = None
        self.writes: list[tuple[int, int, int]] = []

    def read(self, offset: int, size: int) -> int:
        return 0x11223344 >> (8 * (4 - size)) if size < 4 else 0x11223344

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes.append((offset, size, value))
        assert self.cpu is not None
        if offset == 0:
            self.cpu.set_irq(MIP_MSIP, True)
        elif offset == 4:
            self.cpu.request_stop()


def mmio_cpu(asm: Asm, translate: bool) -> tuple[Cpu, Doorbell]:
    bus = Bus()
    bell = Doorbell()
    bus.map(MMIO, 0x10, bell, "doorbell")
    cpu = boot(asm, translate=translate, bus=bus)
    bell.cpu = cpu
    return cpu, bell


def test_mmio_store_raising_interrupt_is_taken_at_next_instruction(translate: bool) -> None:
    asm = with_handler()
    asm.li("t0", MIP_MSIP)
    asm.csrrw("zero", "mie", "t0")
    asm.csrrsi("zero", "mstatus", 8)
    asm.li("a1", MMIO)
    asm.li("a2", 0x1234)
    store_pc = asm.pc
    asm.sh("a2", "a1", 0)
    asm.li("a0", 1)
    add_spin_handler(asm)
    cpu, bell = mmio_cpu(asm, translate)
    cpu.run(1000)
    assert bell.writes == [(0, 2, 0x1234)]
    assert (cpu.mcause, cpu.mepc) == (0x80000003, store_pc + 4)
    assert cpu.x[10] == 0


def test_request_stop_from_mmio_ends_run_after_the_store(translate: bool) -> None:
    asm = Asm()
    asm.li("a1", MMIO)
    asm.sw("a1", "a1", 4)
    asm.li("a0", 1)
    asm.j(asm.pc)
    cpu, bell = mmio_cpu(asm, translate)
    assert cpu.run(1000) == 2
    assert bell.writes == [(4, 4, MMIO)]
    assert cpu.pc == RAM + 8
    assert cpu.x[10] == 0
    assert cpu.run(10) == 10, "a new slice runs again"
    assert cpu.x[10] == 1


def test_mmio_loads(translate: bool) -> None:
    asm = Asm()
    asm.li("a1", MMIO)
    asm.lw("a0", "a1", 0)
    asm.lb("a2", "a1", 0)
    asm.lhu("a3", "a1", 0)
    asm.lh("a4", "a1", 8)
    asm.wfi()
    bus = Bus()
    bus.map(MMIO, 0x10, Ram(0x10), "ram-like")
    cpu = boot(asm, translate=translate, bus=bus)
    bus.write(MMIO, 4, 0x8081F2F3)
    bus.write(MMIO + 8, 2, 0x8001)
    cpu.run(100)
    assert cpu.x[10:15] == [0x8081F2F3, MMIO, 0xFFFFFFF3, 0xF2F3, 0xFFFF8001]


def test_fence_i_makes_self_modifying_code_visible(translate: bool) -> None:
    asm = Asm()
    asm.li("s0", 3)
    asm.label("again")
    asm.jal("ra", "func")
    asm.add("s1", "s1", "a0")
    asm.la("t0", "func")
    asm.li("t1", i_type(0x13, 0, 10, 0, 100))  # addi a0, zero, 100
    asm.sw("t1", "t0", 0)
    asm.fence_i()
    asm.addi("s0", "s0", -1)
    asm.bne("s0", "zero", "again")
    asm.wfi()
    asm.label("func")
    asm.li("a0", 1)
    asm.ret()
    cpu = boot(asm, translate=translate)
    cpu.run(1000)
    assert cpu.waiting
    assert cpu.x[9] == 1 + 100 + 100


def test_budget_is_exact(translate: bool) -> None:
    asm = Asm()
    asm.label("loop")
    for _ in range(7):
        asm.addi("a0", "a0", 1)
    asm.j("loop")
    cpu = boot(asm, translate=translate)
    total = 0
    for budget in (1, 5, 13, 100, 999, 3):
        assert cpu.run(budget) == budget
        total += budget
        assert cpu.instret == total
    assert cpu.x[10] == total - total // 8


def test_request_stop_before_run_is_forgotten(translate: bool) -> None:
    asm = Asm()
    asm.j(asm.pc)
    cpu = boot(asm, translate=translate)
    cpu.request_stop()
    assert cpu.run(20) == 20


def test_mmio_store_inside_a_tight_loop_ends_each_run(translate: bool) -> None:
    asm = Asm()
    asm.li("a1", MMIO)
    asm.li("t0", 5)
    loop = asm.label("loop")
    asm.sw("t0", "a1", 4)  # asks the CPU to stop
    asm.addi("t0", "t0", -1)
    asm.bne("t0", "zero", "loop")
    asm.wfi()
    cpu, bell = mmio_cpu(asm, translate)
    assert cpu.run(1000) == 3
    assert cpu.pc == loop + 4
    for _ in range(4):
        assert cpu.run(1000) == 3
    assert [value for _, _, value in bell.writes] == [5, 4, 3, 2, 1]
    assert cpu.run(1000) == 3  # addi, bne (falls through), wfi
    assert cpu.waiting


def test_interrupt_raised_by_mmio_inside_a_loop(translate: bool) -> None:
    asm = with_handler()
    asm.li("t0", MIP_MSIP)
    asm.csrrw("zero", "mie", "t0")
    asm.csrrsi("zero", "mstatus", 8)
    asm.li("a1", MMIO)
    asm.li("t0", 1000)
    asm.label("loop")
    asm.addi("a0", "a0", 1)
    asm.addi("t0", "t0", -1)
    store_pc = asm.pc
    asm.sw("t0", "a1", 0)  # raises MSIP
    asm.bne("t0", "zero", "loop")
    add_spin_handler(asm)
    cpu, bell = mmio_cpu(asm, translate)
    cpu.run(5000)
    assert (cpu.mcause, cpu.mepc) == (0x80000003, store_pc + 4)
    assert cpu.x[10] == 1
    assert len(bell.writes) == 1


def test_budget_is_exact_inside_a_self_looping_block(translate: bool) -> None:
    asm = Asm()
    asm.li("t0", 100_000)
    asm.label("loop")
    asm.addi("a0", "a0", 1)
    asm.addi("t0", "t0", -1)
    asm.bne("t0", "zero", "loop")
    asm.wfi()
    cpu = boot(asm, translate=translate)
    total = 0
    for budget in (2, 3, 10, 1000, 7, 4, 333):
        assert cpu.run(budget) == budget
        total += budget
    assert cpu.instret == total
    assert cpu.x[10] == (total - 1 + 2) // 3


def test_interrupt_without_handler_is_a_guest_fault(translate: bool) -> None:
    asm = Asm()
    asm.li("t0", MIP_MTIP)
    asm.csrrw("zero", "mie", "t0")
    asm.csrrsi("zero", "mstatus", 8)
    asm.j(asm.pc)
    cpu = boot(asm, translate=translate)
    cpu.run(10)
    cpu.set_irq(MIP_MTIP, True)
    with pytest.raises(GuestFault) as info:
        cpu.run(10)
    assert info.value.cause == 0x80000007
    assert info.value.pc == RAM + 12


class Clockwatch:
    """An MMIO register that records the CPU's instret and pc at each access (virtual time
    is derived from instret, so devices must see it exact mid-region)."""

    def __init__(self) -> None:
        self.cpu: Cpu | None = None
        self.seen: list[tuple[int, int]] = []

    def read(self, offset: int, size: int) -> int:
        assert self.cpu is not None
        self.seen.append((self.cpu.instret, self.cpu.pc))
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        self.read(offset, size)


def test_devices_see_exact_instret_and_pc(translate: bool) -> None:
    asm = Asm()
    asm.li("a1", MMIO)
    asm.li("t0", 3)
    asm.label("loop")
    for _ in range(5):
        asm.nop()
    load_pc = asm.pc
    asm.lw("a0", "a1", 0)
    asm.nop()
    store_pc = asm.pc
    asm.sw("a0", "a1", 0)
    asm.addi("t0", "t0", -1)
    asm.bne("t0", "zero", "loop")
    asm.wfi()
    bus = Bus()
    watch = Clockwatch()
    bus.map(MMIO, 0x10, watch, "clockwatch")
    cpu = boot(asm, translate=translate, bus=bus)
    watch.cpu = cpu
    while not cpu.waiting:
        cpu.run(1000)
    expected = []
    for i in range(3):
        expected += [(2 + 10 * i + 5, load_pc), (2 + 10 * i + 7, store_pc)]
    assert watch.seen == expected


def test_trap_storm_still_returns(translate: bool) -> None:
    """A handler that itself faults retires nothing, yet run() must come back."""
    asm = Asm()
    asm.li("t0", 0x2000)  # mtvec outside RAM: every trap entry faults on fetch
    asm.csrrw("zero", "mtvec", "t0")
    asm.word(0)
    cpu = boot(asm, translate=translate)
    assert cpu.run(1000) == 2
    assert cpu.run(1000) == 0
    assert (cpu.mcause, cpu.mepc, cpu.pc) == (1, 0x2000, 0x2000)
