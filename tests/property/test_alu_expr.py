"""The translator's arithmetic expressions against the interpreter, with their bit bounds.

An expression may leave out its 32-bit mask when its operands' bounds say the value
cannot reach 2^32; these properties check every form for operands anywhere within their
bounds: the value equals the interpreter's, and it lies below the bound it claims; so
does a left shift forwarded into a right shift (which may undo it with a mask), and an
`and` with a negated bit (a choice). A branch's test, which compares signed values as
unsigned ones when neither can be negative and is a value's truth against x0, must
decide as the interpreter does.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emu.cpu.alu_expr import ZERO, Operand, condition, expression
from emu.cpu.decode import BRANCH_OPS, Insn
from emu.cpu.interp import _BRANCHES, _alu, div, rem
from emu.cpu.translate import SIGN_EXTEND_BYTE
from tests.rvasm import _I_OPS, _R_OPS

REGISTER_OPS = sorted(op.rstrip("_") for op in _R_OPS)
IMMEDIATE_OPS = sorted(_I_OPS)
SHIFT_OPS = ["slli", "srli", "srai"]


@st.composite
def bounded(draw: st.DrawFn) -> tuple[int, int]:
    """(bits, value): a bound and a value below it, often at its top or its top bit alone
    (the sign bit, for 32)."""
    bits = draw(st.integers(0, 32))
    top = (1 << bits) - 1
    value = draw(st.sampled_from([top, top >> 1, (top >> 1) + 1, 0, 1]) | st.integers(0, top))
    return bits, value & top


def evaluate(value: Operand, a: int, b: int) -> int:
    return eval(value.text, {"DIV": div, "REM": rem, "SB": SIGN_EXTEND_BYTE, "a": a, "b": b})


def check(insn: Insn, a: tuple[int, int], b: tuple[int, int], expected: int) -> None:
    value = expression(insn, 0x8000_0000, Operand("a", a[0]), Operand("b", b[0]))
    got = evaluate(value, a[1], b[1])
    assert got == expected, value.text
    assert 0 <= got < 1 << value.bits, (value.text, value.bits)


@pytest.mark.parametrize("op", REGISTER_OPS)
@settings(max_examples=150)
@given(a=bounded(), b=bounded())
def test_register_form_is_exact_and_within_its_bound(op: str, a: tuple[int, int],
                                                     b: tuple[int, int]) -> None:
    check(Insn(op, 3, 1, 2), a, b, _alu(op, a[1], b[1]))


@pytest.mark.parametrize("op", IMMEDIATE_OPS)
@settings(max_examples=150)
@given(a=bounded(), imm=st.integers(-2048, 2047))
def test_immediate_form_is_exact_and_within_its_bound(op: str, a: tuple[int, int],
                                                      imm: int) -> None:
    check(Insn(op, 3, 1, imm=imm), a, (0, 0), _alu(op, a[1], imm & 0xFFFFFFFF))


@settings(max_examples=300)
@given(imm=st.integers(-2048, 2047).filter(bool), near=st.integers(-2, 2),
       bits=st.sampled_from([12, 31, 32]))
def test_an_addi_across_2_to_the_32_is_exact(imm: int, near: int, bits: int) -> None:
    """`addi` of a register that may hold any value wraps through a test, not a mask: at
    and around the value where the sum crosses 0 or 2^32 (and the value it then is
    before wrapping, `unwrapped`, is the same mod 2^32)."""
    edge = -imm if imm < 0 else (1 << 32) - imm
    value = (edge + near) % (1 << bits)
    insn = Insn("addi", 3, 1, imm=imm)
    expected = _alu("addi", value, imm & 0xFFFFFFFF)
    check(insn, (bits, value), (0, 0), expected)
    result = expression(insn, 0x8000_0000, Operand("a", bits), ZERO)
    if result.unwrapped is not None:
        assert evaluate(result._replace(text=result.unwrapped), value, 0) % (1 << 32) == expected


@settings(max_examples=200)
@given(shamt=st.integers(1, 31), near=st.integers(-2, 2), bits=st.sampled_from([31, 32]))
def test_an_slli_across_2_to_the_32_is_exact(shamt: int, near: int, bits: int) -> None:
    """`slli` of a register that may hold any value masks only when the shift can reach
    2^32: at and around the smallest value for which it does."""
    value = ((1 << (32 - shamt)) + near) % (1 << bits)
    check(Insn("slli", 3, 1, imm=shamt), (bits, value), (0, 0), _alu("slli", value, shamt))


@pytest.mark.parametrize("op", SHIFT_OPS)
@settings(max_examples=150)
@given(a=bounded(), shamt=st.integers(0, 31))
@example(a=(32, 0x80000000), shamt=4)  # the sign bit alone: srai spreads it
def test_shift_form_is_exact_and_within_its_bound(op: str, a: tuple[int, int],
                                                  shamt: int) -> None:
    check(Insn(op, 3, 1, imm=shamt), a, (0, 0), _alu(op, a[1], shamt))


@pytest.mark.parametrize("op", ["srli", "srai"])
@settings(max_examples=300)
@given(a=bounded(), left=st.integers(0, 31), right=st.integers(0, 31), same=st.booleans())
@example(a=(32, 0x8000), left=16, right=16, same=True)  # a halfword's sign bit alone
@example(a=(16, 0x8000), left=16, right=16, same=True)
@example(a=(15, 0x7FFF), left=16, right=16, same=True)
def test_a_left_shift_forwarded_into_a_right_shift_is_exact(
        op: str, a: tuple[int, int], left: int, right: int, same: bool) -> None:
    right = left if same else right
    shift = expression(Insn("slli", 3, 1, imm=left), 0x8000_0000, Operand("a", a[0]), ZERO)
    forwarded = shift._replace(text=f"({shift.text})")  # as the translator forwards it
    value = expression(Insn(op, 3, 3, imm=right), 0x8000_0000, forwarded, ZERO)
    got = evaluate(value, a[1], 0)
    assert got == _alu(op, _alu("slli", a[1], left), right), value.text
    assert 0 <= got < 1 << value.bits, (value.text, value.bits)


@settings(max_examples=200)
@given(c=bounded(), b=bounded(), mask_first=st.booleans(), stored=st.booleans())
@example(c=(2, 2), b=(32, 0xFFFFFFFF), mask_first=True, stored=False)
def test_a_negated_bit_anded_picks_the_other_operand(c: tuple[int, int], b: tuple[int, int],
                                                      mask_first: bool, stored: bool) -> None:
    """`sub m, zero, c` for a c of one bit is 0 or all ones (a bitwise CRC's `-(crc & 1)`):
    the `and` it goes into, forwarded or from a local known to hold such a value
    (`stored`), is a choice between its other operand and 0, exact either way round. A
    wider c makes no such value."""
    negated = expression(Insn("sub", 3, 0, 1), 0x8000_0000, ZERO, Operand("a", c[0]))
    mask = evaluate(negated, c[1], 0)
    assert mask == _alu("sub", 0, c[1])
    if c[0] > 1:
        assert negated.flag is None
        return
    assert negated.flag is not None
    operand = (Operand("m", 32, flag="m") if stored
               else negated._replace(text=f"({negated.text})"))
    other = Operand("b", b[0])
    pair = (operand, other) if mask_first else (other, operand)
    value = expression(Insn("and", 4, 3, 2), 0x8000_0000, *pair)
    got = eval(value.text, {"a": c[1], "b": b[1], "m": mask})
    assert got == _alu("and", mask, b[1]), value.text
    assert 0 <= got < 1 << value.bits, (value.text, value.bits)
    assert "0xFFFFFFFF" not in value.text  # no 32-bit arithmetic for the choice


@settings(max_examples=300)
@given(a=bounded(), b=bounded(), width=st.integers(0, 32), hole=st.integers(0, 40),
       mask_first=st.booleans())
@example(a=(8, 0xFF), b=(32, 0xFFFFFF00), width=8, hole=40, mask_first=False)  # a CRC's index
@example(a=(8, 0xFF), b=(32, 0xFFFFFF00), width=8, hole=4, mask_first=False)
def test_an_and_with_a_mask_after_an_xor_is_exact(a: tuple[int, int], b: tuple[int, int],
                                                  width: int, hole: int,
                                                  mask_first: bool) -> None:
    """`(p ^ q) & m`, the xor forwarded into the `and` of a constant: where m is all ones
    below 2^width and p fits it, only q is masked (or nothing, if q fits too). With a
    `hole` in the mask (a zero bit below its top), both are. The value is the
    interpreter's either way round."""
    xor = expression(Insn("xor", 3, 1, 2), 0x8000_0000, Operand("a", a[0]), Operand("b", b[0]))
    forwarded = xor._replace(text=f"({xor.text})")
    ones = (1 << width) - 1
    mask_value = ones & ~(1 << hole) if hole < width - 1 else ones
    mask = Operand(f"{mask_value:#x}", mask_value.bit_length())
    pair = (mask, forwarded) if mask_first else (forwarded, mask)
    value = expression(Insn("and", 4, 3, 5), 0x8000_0000, *pair)
    got = evaluate(value, a[1], b[1])
    assert got == _alu("and", _alu("xor", a[1], b[1]), mask_value), value.text
    assert 0 <= got < 1 << value.bits, (value.text, value.bits)
    if mask_value == ones and min(a[0], b[0]) <= width < max(a[0], b[0]):
        assert f"^ ({'b' if b[0] > width else 'a'} & " in value.text  # the wide one masked


@settings(max_examples=200)
@given(a=bounded(), b=bounded(), mask_first=st.booleans())
@example(a=(32, 0x80000000), b=(32, 0x04C11DB7), mask_first=False)
@example(a=(32, 0x7FFFFFFF), b=(32, 0x04C11DB7), mask_first=True)
def test_a_sign_spread_anded_picks_the_other_operand(a: tuple[int, int], b: tuple[int, int],
                                                     mask_first: bool) -> None:
    """`srai m, c, 31` is 0 or all ones (an MSB-first bitwise CRC's `-(crc >> 31)`): the
    `and` it goes into is a choice between its other operand and 0, exact either way
    round; of a value whose sign bit is known clear it is 0."""
    spread = expression(Insn("srai", 3, 1, imm=31), 0x8000_0000, Operand("a", a[0]), ZERO)
    mask = evaluate(spread, a[1], 0)
    assert mask == _alu("srai", a[1], 31)
    assert (spread.flag is not None) == (a[0] == 32)
    operand = spread._replace(text=f"({spread.text})")
    other = Operand("b", b[0])
    pair = (operand, other) if mask_first else (other, operand)
    value = expression(Insn("and", 4, 3, 2), 0x8000_0000, *pair)
    got = evaluate(value, a[1], b[1])
    assert got == _alu("and", mask, b[1]), value.text
    assert 0 <= got < 1 << value.bits, (value.text, value.bits)


@given(imm=st.integers(0, 0xFFFFF).map(lambda k: k << 12))
def test_upper_forms_are_constants_within_their_bound(imm: int) -> None:
    check(Insn("lui", 3, imm=imm), (0, 0), (0, 0), imm)
    check(Insn("auipc", 3, imm=imm), (0, 0), (0, 0), (0x8000_0000 + imm) & 0xFFFFFFFF)


@pytest.mark.parametrize("op", sorted(BRANCH_OPS))
@settings(max_examples=200)
@given(a=bounded(), b=bounded())
@example(a=(32, 0x8000_0000), b=(0, 0))  # the sign bit alone, against zero
@example(a=(32, 0x7FFF_FFFF), b=(0, 0))
@example(a=(0, 0), b=(32, 0x8000_0000))
@example(a=(31, 0x7FFF_FFFF), b=(32, 0x8000_0000))
def test_branch_test_decides_as_the_interpreter(op: str, a: tuple[int, int],
                                                b: tuple[int, int]) -> None:
    test = condition(op, Operand("a", a[0]), Operand("b", b[0]))
    assert eval(test, {"a": a[1], "b": b[1]}) == _BRANCHES[op](a[1], b[1]), test


@pytest.mark.parametrize("op", sorted(BRANCH_OPS))
@settings(max_examples=100)
@given(a=bounded(), zero_first=st.booleans())
@example(a=(32, 0), zero_first=False)
def test_branch_against_x0_decides_as_the_interpreter(op: str, a: tuple[int, int],
                                                      zero_first: bool) -> None:
    """A branch on x0 and a register (`beqz`, `bnez`, `bltz`, ...), x0 on either side: a
    test against zero may be the value's truth alone."""
    pair = (ZERO, Operand("a", a[0])) if zero_first else (Operand("a", a[0]), ZERO)
    test = condition(op, *pair)
    values = (0, a[1]) if zero_first else (a[1], 0)
    assert bool(eval(test, {"a": a[1]})) == _BRANCHES[op](*values), test
