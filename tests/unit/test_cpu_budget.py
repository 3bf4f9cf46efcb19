"""The instruction budget in translated regions (emu.cpu.translate): each block checks it
before running, so a slice's end leaves at most one block to the interpreter."""

from __future__ import annotations

import pytest

from emu.cpu import interp
from tests.rvasm import Asm, boot


def two_block_loop() -> Asm:
    """Block A (20 instructions) falls into block B (20, ending in a branch back to A)."""
    asm = Asm()
    asm.label("a")
    for _ in range(19):
        asm.addi(5, 5, 1)
    asm.beq(0, 1, "b")  # never taken (x1 stays non-zero): A ends here, B follows
    asm.label("b")
    for _ in range(19):
        asm.addi(6, 6, 1)
    asm.bne(0, 1, "a")
    return asm


def test_a_slice_shorter_than_the_region_runs_the_blocks_that_fit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = boot(two_block_loop())
    cpu.x[1] = 1
    assert cpu.run(400) == 400  # translated and warm; pc is back at A
    steps: list[int] = []
    step = interp.step

    def counting(c: object) -> None:
        steps.append(1)
        step(c)  # type: ignore[arg-type]

    monkeypatch.setattr(interp, "step", counting)
    assert cpu.run(30) == 30
    # A (20) ran translated; B (20) did not fit in the 10 left, which the interpreter ran.
    assert len(steps) == 10
    assert (cpu.x[5], cpu.x[6]) == (19 * 11, 19 * 10 + 10)
