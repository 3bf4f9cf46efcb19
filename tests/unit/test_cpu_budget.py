"""The instruction budget in translated regions (emu.cpu.translate): each block checks it
before running, so a slice's end leaves at most one block to the interpreter."""

from __future__ import annotations

import pytest

from emu.cpu import interp
from emu.cpu.cpu import Cpu
from tests.rvasm import Asm, boot


def two_block_loop(jump: bool = False) -> Asm:
    """Block A (20 instructions) falls into block B (20, ending in a branch back to A),
    or with `jump`, ends in a jump over 5 unused instructions to B."""
    asm = Asm()
    asm.label("a")
    for _ in range(19):
        asm.addi(5, 5, 1)
    if jump:
        asm.j("b")
        for _ in range(5):
            asm.addi(7, 7, 1)
    else:
        asm.beq(0, 1, "b")  # never taken (x1 stays non-zero): A ends here, B follows
    asm.label("b")
    for _ in range(19):
        asm.addi(6, 6, 1)
    asm.bne(0, 1, "a")
    return asm


def interpreted_pcs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pcs of the instructions the interpreter runs from now on, in order."""
    pcs: list[int] = []
    step = interp.step

    def recorded(cpu) -> None:
        pcs.append(cpu.pc)
        step(cpu)

    monkeypatch.setattr(interp, "step", recorded)
    return pcs


def test_a_slice_shorter_than_the_region_runs_the_blocks_that_fit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = boot(two_block_loop())
    cpu.x[1] = 1
    assert cpu.run(400) == 400  # translated and warm; pc is back at A
    steps = interpreted_pcs(monkeypatch)
    assert cpu.run(30) == 30
    # A (20) ran translated; B (20) did not fit in the 10 left, which the interpreter ran.
    assert len(steps) == 10
    assert (cpu.x[5], cpu.x[6]) == (19 * 11, 19 * 10 + 10)


def test_a_csr_instruction_in_a_loop_does_not_stop_translation(monkeypatch) -> None:
    """No region can start at a CSR instruction; it is interpreted each time, and code
    that becomes hot after it (a function called every other pass, through a register)
    is still translated within the same slice: a region at the CSR instruction that
    declined to run would have been taken for the slice's tail, and everything not yet
    translated would have stayed interpreted to the slice's end."""
    asm = Asm()
    asm.la(9, "callee")
    asm.label("loop")
    asm.csrrs(5, "instret", "zero")
    asm.addi(7, 7, 1)
    asm.andi(8, 7, 1)
    asm.beq(8, 0, "loop")
    asm.jalr(6, 9, 0)
    asm.j("loop")
    asm.label("callee")
    asm.addi(10, 10, 1)
    asm.jalr(0, 6, 0)
    code = asm.code()
    callee = 0x8000_0000 + code.index(bytes.fromhex("13051500"))  # addi x10, x10, 1
    cpu = boot(code, translate_after=16)
    steps = interpreted_pcs(monkeypatch)
    cpu.run(20_000)
    assert callee in cpu._regions
    # interpreted until hot (and maybe once more as the slice's tail), not 2,000 times
    assert steps.count(callee) <= 2 * 16 + 1


def test_slices_that_end_inside_translated_code_add_no_regions() -> None:
    """A slice that starts where the last one stopped, in the middle of a region's block,
    interprets on to the next jump: the pcs where slices happen to end never become
    entries of their own (each would be compiled for nothing)."""
    cpu = boot(two_block_loop())
    cpu.x[1] = 1
    assert cpu.run(400) == 400
    warm = set(cpu._regions)
    for _ in range(3000):
        assert cpu.run(7) == 7  # 7 and the loop's 40 instructions: every pc ends a slice
    assert set(cpu._regions) == warm
    # 400 + 3000 * 7 instructions are 535 whole passes of 19 + 1 + 19 + 1
    assert cpu.x[5] == cpu.x[6] == 19 * 535


def test_a_region_the_budget_stops_at_one_of_its_own_blocks_gets_no_entry_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A slice of 30 runs A translated and stops the region at B's start (B's 20 do not
    fit in the 10 left), or the other way round: the blocks where the budget stops the
    region are reached by its own jumps, not by jumps from outside, and never become
    entries of their own. What the slice leaves is interpreted, and the next slice goes
    on in the region at the next block start."""
    cpu = boot(two_block_loop())
    cpu.x[1] = 1
    assert cpu.run(400) == 400
    warm = set(cpu._regions)
    steps = interpreted_pcs(monkeypatch)
    for _ in range(300):
        assert cpu.run(30) == 30
    assert set(cpu._regions) == warm
    # each slice: one block translated, the next one's first 10 instructions interpreted
    assert len(steps) == 300 * 10
    # 400 + 300 * 30 instructions are 235 whole passes of 19 + 1 + 19 + 1
    assert cpu.x[5] == cpu.x[6] == 19 * 235


@pytest.mark.parametrize("jump", [False, True], ids=["falls-into-b", "jumps-to-b"])
def test_a_slice_that_starts_inside_a_region_goes_on_in_it_at_the_next_block(
        monkeypatch: pytest.MonkeyPatch, jump: bool) -> None:
    """The last slice stopped 5 instructions into A: the interpreter runs the rest of A,
    and B, a block of the region though not its entry, runs in the region all the same,
    whether A steps or jumps there (neither heated nor interpreted)."""
    asm = two_block_loop(jump)
    b = asm.labels["b"]
    cpu = boot(asm)
    cpu.x[1] = 1
    assert cpu.run(400) == 400
    assert cpu.run(5) == 5
    steps = interpreted_pcs(monkeypatch)
    assert cpu.run(1000) == 1000
    # A's last 15 interpreted, then B A ... B A translated (960 + 20), then the 5 B has
    # no room for
    assert len(steps) == 15 + 5
    assert b in cpu._inside and b not in cpu._regions
    # 1405 instructions: 35 passes and 5 of A
    assert (cpu.x[5], cpu.x[6], cpu.x[7]) == (19 * 35 + 5, 19 * 35, 0)


def test_code_after_a_csr_instruction_inside_a_region_still_becomes_an_entry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every other pass leaves a loop's region for a CSR instruction, which only the
    interpreter runs, and steps from it onto a block the region holds but does not start
    at. That block is reached from code no region holds, as if by a jump: it is heated
    and becomes an entry, not interpreted on every such pass."""
    asm = Asm()
    asm.label("outer")
    asm.addi(9, 9, 1)
    asm.andi(10, 9, 1)
    asm.beq(10, 0, "after")
    asm.j("csr")
    asm.label("csr")
    asm.csrrs(5, "instret", "zero")
    asm.label("after")
    for _ in range(6):
        asm.addi(7, 7, 1)
    asm.j("outer")
    code = asm.code()
    after = 0x8000_0000 + 5 * 4
    cpu = boot(code, translate_after=16)
    steps = interpreted_pcs(monkeypatch)
    cpu.run(30_000)
    assert after in cpu._regions
    assert steps.count(after) <= 2 * 16 + 1


def call_into_a_long_run(preamble: int = 50) -> tuple[Asm, int]:
    """main calls a callee whose first run (`preamble` instructions, then a loop of x20
    passes) is, at 50, longer than a region takes in of a callee: a region from main
    covers the loop's head but has no block there, and leaves to it when the loop
    branches back."""
    asm = Asm()
    asm.label("main")
    asm.mv(5, 20)
    asm.jal(1, "callee")
    asm.addi(9, 9, 1)
    asm.j("main")
    asm.label("callee")
    for _ in range(preamble):
        asm.addi(6, 6, 1)
    loop = asm.label("loop")
    asm.addi(5, 5, -1)
    asm.bne(5, 0, "loop")
    asm.ret()
    return asm, loop


def pass_insns(loops: int, preamble: int = 50) -> int:
    return 3 + preamble + 2 * loops + 2


def region_without_the_loop_head() -> tuple[Cpu, int]:
    """call_into_a_long_run after 20 single passes (no branch back): main's region is
    translated with the callee taken in, and covers the loop's head without a block there."""
    asm, loop = call_into_a_long_run()
    cpu = boot(asm, translate_after=16)
    cpu.x[20] = 1
    for _ in range(20):
        assert cpu.run(pass_insns(1)) == pass_insns(1)
    assert loop in cpu._covered and loop not in cpu._inside
    return cpu, loop


def test_a_loop_head_a_region_cut_off_is_heated_by_its_own_back_edge(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """While the passes are single (no branch back), main's region is translated with
    the callee taken in. Then the loop runs 100 passes: the region leaves at the loop's
    head and the interpreter runs the loop. Its branch back is a jump to a pc where no
    region has a block, so it heats that pc, which becomes an entry within one call."""
    cpu, loop = region_without_the_loop_head()
    cpu.x[20] = 100
    steps = interpreted_pcs(monkeypatch)
    for _ in range(3):
        assert cpu.run(pass_insns(100)) == pass_insns(100)
    assert loop in cpu._regions
    assert steps.count(loop) <= 16 + 1
    assert cpu.x[9] == 23


def test_a_pc_a_region_covers_is_translated_ahead_once_it_recurs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pass, main's region leaves once to the loop's head (two passes of the loop:
    the second runs interpreted), then the guest idles and the machine warms up, which
    takes the heat of the code run so far to translate it ahead. The loop's head, which
    a region covers, keeps its heat after the first pass and is translated ahead after
    the second: it does not run interpreted on every request (pingd between pings: its
    data-port copy loop once did), nor is every such pc translated (some are reached
    only once, at boot)."""
    cpu, loop = region_without_the_loop_head()
    cpu.x[20] = 2
    steps = interpreted_pcs(monkeypatch)
    for done in range(1, 6):
        assert cpu.run(pass_insns(2)) == pass_insns(2)
        while cpu.warm_up():
            pass
        assert (loop in cpu._regions) == (done >= 2)
    assert steps.count(loop) == 2


def test_warm_up_adds_no_entry_inside_a_region_it_translated_ahead() -> None:
    """Idle after one pass, the machine translates ahead the code run so far, lowest pc
    first: main's region takes in the callee and its loop, so the callee's entry, the
    loop's head and the return point, all heated by the pass, get no region of their own."""
    asm, loop = call_into_a_long_run(preamble=0)
    callee = asm.labels["callee"]
    cpu = boot(asm, translate_after=1000)
    cpu.x[20] = 4
    assert cpu.run(pass_insns(4, preamble=0)) == 13
    assert {callee, loop} <= set(cpu._heat)
    while cpu.warm_up():
        pass
    assert list(cpu._regions) == [0x8000_0000]
    assert {callee, loop} <= cpu._covered
