"""Python expressions for RV32IM's arithmetic instructions — a sliver of QEMU's tcg/optimize.c.

The region translator writes each arithmetic instruction as one Python expression over
the registers it reads. Guest registers are Python ints in [0, 2^32), and Python ints do
not wrap, so an expression must be masked with `& 0xFFFFFFFF` wherever its value could
leave that range. Each operand carries an upper bound on its bit length (QEMU's optimizer
tracks known-zero bits the same way): a zero-extended byte is below 2^8, shifted left by
two below 2^10, so the shift needs no mask, and nor does an add of two values below 2^31.
An `addi` of a register that may be anywhere in range wraps through a comparison with
the one value where it crosses 0 or 2^32, not a mask: `& 0xFFFFFFFF` takes CPython's
general path for integers of more than 30 bits, and a loop counter's decrement or a
pointer's step would pay it on every pass. So does a `sub` of two registers. An `slli`
masks only when its operand is large enough to reach 2^32 (a CRC's state shifted by one
bit each pass seldom is). A sign extension tests the sign bit and ors in the high bits
(a byte's is looked up in `SB`, the translator's table of sign-extended bytes, as its
`lb` does); so does an `srai` of a register that may be negative, and one by 31, which
spreads the sign bit (an MSB-first CRC's `-(crc >> 31)`), is a choice between all ones
and 0 (`Operand.flag`). An `and` with a mask of low ones after an xor masks only the
xor's wider operand where the other fits the mask.
The bounds hold within one block only; the translator starts each block at 32 bits for
every register. An expression masked last also keeps its unmasked form, and a sum its two
terms, for the translator to use where the value is only an address.
"""

from __future__ import annotations

from typing import NamedTuple

from emu.cpu.decode import Insn

M32 = 0xFFFFFFFF
_SIGNED = "(({v} ^ 0x80000000) - 0x80000000)"


class Operand(NamedTuple):
    text: str  # a Python expression: a register's local, a literal, or a whole computation
    bits: int  # its value is below 2**bits
    # (a, k) when the value is a shifted left by k, mod 2^32: a right shift by the same k
    # undoes it with a mask (gcc's zero- and sign-extension of a halfword or byte).
    shifted: tuple[Operand, int] | None = None
    # When the value is 0 or all ones (a bit's negation, a bitwise CRC's `-(crc & 1)`):
    # a test that is true when it is all ones. An `and` with it then picks its other
    # operand or 0, with no 32-bit arithmetic.
    flag: str | None = None
    # When `text` is a computation masked to 32 bits last: the computation before the
    # mask. As an address it needs no mask (the translator's RAM test fails for any
    # value outside [0, 2^32), and its device path masks the address itself).
    unwrapped: str | None = None
    # For an add: its two operands (an addi's second one its immediate). As an address
    # the sum can take a constant into the access's offset, or a register that a loop
    # does not change as an offset computed once, before the loop.
    terms: tuple[Operand, Operand] | None = None
    # For an xor: its two operands. An `and` with a mask that the narrower one fits in
    # masks the wider one alone (a table CRC-32's `(crc ^ byte) & 0xff`).
    xored: tuple[Operand, Operand] | None = None


ZERO = Operand("0", 0)
_IMMEDIATE = frozenset({"addi", "slti", "sltiu", "xori", "ori", "andi", "slli", "srli", "srai"})
# Immediate forms that are their register form with the immediate as a constant operand.
_REGISTER_FORM = {"slti": "slt", "sltiu": "sltu", "andi": "and", "ori": "or", "xori": "xor"}


def constant(value: int) -> Operand:
    return Operand(f"{value:#x}", value.bit_length())


def _wrapped(expr: str, bits: int) -> Operand:
    """`expr`, masked to 32 bits only if a value of `bits` bits could exceed them."""
    if bits <= 32:
        return Operand(expr, bits)
    return _masked(expr)


def _masked(expr: str) -> Operand:
    """`expr` (which may leave [0, 2^32)) masked to 32 bits."""
    return Operand(f"({expr}) & 0xFFFFFFFF", 32, unwrapped=expr)


def condition(op: str, a: Operand, b: Operand) -> str:
    """A Python test that is true when branch `op` on operands a (rs1) and b (rs2) is
    taken. A signed comparison is an unsigned one when neither operand can have its sign
    bit set, and a test of the sign bit alone against zero (`bltz`, `bgez`)."""
    x, y = a.text, b.text
    if op in ("beq", "bne") and ZERO in (a, b):
        # A test of a value against zero is its truth: no constant, no comparison.
        value = y if a == ZERO else x
        return f"not {value}" if op == "beq" else value
    if op == "beq":
        return f"{x} == {y}"
    if op == "bne":
        return f"{x} != {y}"
    if op == "bltu":
        return f"{x} < {y}"
    if op == "bgeu":
        return f"{x} >= {y}"
    if op == "blt":
        return _signed_less(a, b)
    if op == "bge":
        # CPython folds the `not` of an `if` into its jump: it costs nothing.
        return f"not ({_signed_less(a, b)})"
    raise ValueError(f"not a branch: {op}")


def _signed_less(a: Operand, b: Operand) -> str:
    x, y = a.text, b.text
    if a.bits < 32 and b.bits < 32:
        return f"{x} < {y}"
    if not b.bits:
        return f"{x} >= 0x80000000"
    return f"({x} ^ 0x80000000) < ({y} ^ 0x80000000)"


def reads(insn: Insn, r: int) -> int:
    """How many times the expression of `insn` names register r (r != 0)."""
    op = insn.op
    if op in ("lui", "auipc"):
        return 0
    if op in _IMMEDIATE:
        return int(insn.rs1 == r)
    a, b = int(insn.rs1 == r), int(insn.rs2 == r)
    if op == "divu":
        b *= 2
    elif op == "remu":
        a *= 2
    return a + b


def expression(insn: Insn, pc: int, a: Operand, b: Operand) -> Operand:
    """The value `insn` (at `pc`) writes to rd, given its operands' expressions: a for
    rs1 and b for rs2 (b is ignored by immediate forms)."""
    op, imm = insn.op, insn.imm
    if op == "lui":
        return constant(imm)
    if op == "auipc":
        return constant((pc + imm) & M32)
    if op in _IMMEDIATE:
        return _immediate(op, a, imm)
    return _register(op, a, b)


def _immediate(op: str, a: Operand, imm: int) -> Operand:
    x = a.text
    if op == "addi":
        if a == ZERO:
            return constant(imm & M32)
        if imm == 0:
            return a
        terms = (a, Operand(str(imm), 32))  # the immediate as a literal, sign and all
        if imm < 0:
            if x.isidentifier():
                return Operand(f"({x} - {-imm} if {x} >= {-imm} else {x} + {imm & M32:#x})", 32,
                               unwrapped=f"{x} - {-imm}", terms=terms)
            return _masked(f"{x} - {-imm}")._replace(terms=terms)
        bits = max(a.bits, imm.bit_length()) + 1
        if bits > 32 and x.isidentifier():
            wrap = (1 << 32) - imm
            return Operand(f"({x} + {imm} if {x} < {wrap:#x} else {x} - {wrap:#x})", 32,
                           unwrapped=f"{x} + {imm}", terms=terms)
        return _wrapped(f"{x} + {imm}", bits)._replace(terms=terms)
    if op == "slli":
        if imm == 0:
            return a
        if a.bits + imm > 32 and x.isidentifier():
            fits = 1 << (32 - imm)
            return Operand(f"({x} << {imm} if {x} < {fits:#x} else ({x} << {imm}) & 0xFFFFFFFF)",
                           32, shifted=(a, imm))
        return _wrapped(f"{x} << {imm}", a.bits + imm)._replace(shifted=(a, imm))
    if op in ("srli", "srai") and a.shifted is not None and a.shifted[1] == imm:
        return _extended(op, *a.shifted)
    if op == "srli":
        return Operand(f"{x} >> {imm}", max(a.bits - imm, 0))
    if op == "srai":
        if a.bits < 32:  # the sign bit is clear: a logical shift
            return Operand(f"{x} >> {imm}", max(a.bits - imm, 0))
        if imm == 31:  # the sign bit copied everywhere: 0 or all ones
            negative = f"{x} >= 0x80000000"
            return Operand(f"(0xFFFFFFFF if {negative} else 0)", 32, flag=negative)
        if x.isidentifier() and imm:
            high = M32 ^ (M32 >> imm)
            return Operand(f"({x} >> {imm} | {high:#x} if {x} >= 0x80000000 else {x} >> {imm})",
                           32)
        return Operand(f"({_SIGNED.format(v=x)} >> {imm}) & 0xFFFFFFFF", 32)
    return _register(_REGISTER_FORM[op], a, constant(imm & M32))


def _and_through_xor(value: Operand, mask: Operand) -> Operand | None:
    """(p ^ q) & m for `value` = p ^ q and a constant `mask` m of all ones below 2^k, when p
    is below 2^k: p ^ (q & m), the wide q narrowed before the xor (CPython computes with
    numbers of 2^30 or more on a slower path, and a CRC-32's state is one); just p ^ q
    when q is below 2^k too. None otherwise."""
    if value.xored is None or not mask.text.startswith("0x"):
        return None
    width = mask.bits
    if int(mask.text, 16) != (1 << width) - 1:
        return None
    p, q = value.xored
    if p.bits > width:
        p, q = q, p
    if p.bits > width:
        return None
    if q.bits <= width:
        return Operand(value.text, max(p.bits, q.bits))
    return Operand(f"({p.text} ^ ({q.text} & {mask.text}))", width)


def _extended(op: str, a: Operand, k: int) -> Operand:
    """(a << k) mod 2^32 shifted right by k: a's low 32 - k bits, zero-extended (srli) or
    sign-extended (srai)."""
    width = 32 - k
    if a.bits < width or (a.bits == width and op == "srli"):
        return a
    low = a.text if a.bits == width else f"({a.text} & {(1 << width) - 1:#x})"
    if op == "srli":
        return Operand(low, width)
    if width == 8:
        return Operand(f"SB[{low}]", 32)
    sign = 1 << (width - 1)
    if a.text.isidentifier():
        high = M32 ^ ((1 << width) - 1)
        return Operand(f"({low} | {high:#x} if {a.text} & {sign:#x} else {low})", 32)
    return Operand(f"(({low} ^ {sign:#x}) - {sign:#x}) & 0xFFFFFFFF", 32)


def _register(op: str, a: Operand, b: Operand) -> Operand:
    x, y = a.text, b.text
    if op == "add":
        return _wrapped(f"{x} + {y}", max(a.bits, b.bits) + 1)._replace(terms=(a, b))
    if op == "sub":
        if a == ZERO and b.bits <= 1:
            flag = y if y.isidentifier() else f"({y})"
            return Operand(f"(0xFFFFFFFF if {flag} else 0)", 32, flag=flag)
        if x.isidentifier() and y.isidentifier():
            return Operand(f"({x} - {y} if {x} >= {y} else {x} - {y} + 0x100000000)", 32,
                           unwrapped=f"{x} - {y}")
        return _masked(f"{x} - {y}")
    if op == "sll":
        return Operand(f"({x} << ({y} & 31)) & 0xFFFFFFFF", 32)
    if op == "srl":
        return Operand(f"{x} >> ({y} & 31)", a.bits)
    if op == "sra":
        return Operand(f"({_SIGNED.format(v=x)} >> ({y} & 31)) & 0xFFFFFFFF", 32)
    if op == "slt":
        if not b.bits:
            return Operand(f"{x} >> 31", 1)
        return Operand(f"1 if {_signed_less(a, b)} else 0", 1)
    if op == "sltu":
        return Operand(f"1 if {x} < {y} else 0", 1)
    if op == "xor":
        return Operand(f"{x} ^ {y}", max(a.bits, b.bits), xored=(a, b))
    if op == "or":
        return Operand(f"{x} | {y}", max(a.bits, b.bits))
    if op == "and":
        if a.flag is not None or b.flag is not None:
            mask, other = (a, b) if a.flag is not None else (b, a)
            return Operand(f"({other.text} if {mask.flag} else 0)", other.bits)
        narrowed = _and_through_xor(a, b) or _and_through_xor(b, a)
        if narrowed is not None:
            return narrowed
        return Operand(f"{x} & {y}", min(a.bits, b.bits))
    if op == "mul":
        return _wrapped(f"{x} * {y}", a.bits + b.bits)
    if op == "mulh":
        return Operand(f"(({_SIGNED.format(v=x)} * {_SIGNED.format(v=y)}) >> 32) & 0xFFFFFFFF",
                       32)
    if op == "mulhsu":
        return Operand(f"(({_SIGNED.format(v=x)} * {y}) >> 32) & 0xFFFFFFFF", 32)
    if op == "mulhu":
        return Operand(f"({x} * {y}) >> 32", max(a.bits + b.bits - 32, 0))
    if op == "div":
        return Operand(f"DIV({x}, {y})", 32)
    if op == "divu":
        return Operand(f"({x} // {y} if {y} else 0xFFFFFFFF)", 32)
    if op == "rem":
        return Operand(f"REM({x}, {y})", 32)
    if op == "remu":
        return Operand(f"({x} % {y} if {y} else {x})", a.bits)
    raise ValueError(f"not an arithmetic instruction: {op}")
