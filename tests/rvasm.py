"""A tiny RV32IM + Zicsr assembler for tests and benchmarks (no cross compiler needed).

`Asm(base)` collects instructions; branch and jump targets may be label names resolved
when `code()` is called. Registers are numbers or ABI names ("t0", "a1", "zero").
Every instruction method returns the encoded word too, so tests can use `enc(...)`-style
one-offs via `Asm().addi(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emu.core.bus import Bus
    from emu.cpu.cpu import Cpu

_ABI = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1"] + [
    f"a{i}" for i in range(8)] + [f"s{i}" for i in range(2, 12)] + [f"t{i}" for i in range(3, 7)]
REGS = {name: i for i, name in enumerate(_ABI)} | {f"x{i}": i for i in range(32)} | {"fp": 8}

Reg = int | str
Target = int | str

CSRS = {
    "cycle": 0xC00, "time": 0xC01, "instret": 0xC02, "cycleh": 0xC80, "timeh": 0xC81,
    "instreth": 0xC82, "mvendorid": 0xF11, "marchid": 0xF12, "mimpid": 0xF13,
    "mhartid": 0xF14, "mstatus": 0x300, "misa": 0x301, "mie": 0x304, "mtvec": 0x305,
    "mscratch": 0x340, "mepc": 0x341, "mcause": 0x342, "mtval": 0x343, "mip": 0x344,
    "mcycle": 0xB00, "minstret": 0xB02, "mcycleh": 0xB80, "minstreth": 0xB82,
}


def reg(r: Reg) -> int:
    n = REGS[r] if isinstance(r, str) else r
    if not 0 <= n < 32:
        raise ValueError(f"bad register {r!r}")
    return n


def r_type(opcode: int, f3: int, f7: int, rd: Reg, rs1: Reg, rs2: Reg) -> int:
    return (f7 << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (f3 << 12) | (reg(rd) << 7) | opcode


def i_type(opcode: int, f3: int, rd: Reg, rs1: Reg, imm: int) -> int:
    if not -2048 <= imm < 4096:
        raise ValueError(f"I-immediate {imm} out of range")
    return ((imm & 0xFFF) << 20) | (reg(rs1) << 15) | (f3 << 12) | (reg(rd) << 7) | opcode


def s_type(opcode: int, f3: int, rs1: Reg, rs2: Reg, imm: int) -> int:
    if not -2048 <= imm < 2048:
        raise ValueError(f"S-immediate {imm} out of range")
    imm &= 0xFFF
    return ((imm >> 5) << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (f3 << 12) \
        | ((imm & 31) << 7) | opcode


def b_type(f3: int, rs1: Reg, rs2: Reg, offset: int) -> int:
    if offset & 1 or not -4096 <= offset < 4096:
        raise ValueError(f"branch offset {offset} invalid")
    o = offset & 0x1FFF
    return (((o >> 12) & 1) << 31) | (((o >> 5) & 0x3F) << 25) | (reg(rs2) << 20) \
        | (reg(rs1) << 15) | (f3 << 12) | (((o >> 1) & 0xF) << 8) | (((o >> 11) & 1) << 7) | 0x63


def u_type(opcode: int, rd: Reg, imm: int) -> int:
    return (imm & 0xFFFFF000) | (reg(rd) << 7) | opcode


def j_type(rd: Reg, offset: int) -> int:
    if offset & 1 or not -(1 << 20) <= offset < (1 << 20):
        raise ValueError(f"jump offset {offset} invalid")
    o = offset & 0x1FFFFF
    return (((o >> 20) & 1) << 31) | (((o >> 1) & 0x3FF) << 21) | (((o >> 11) & 1) << 20) \
        | (((o >> 12) & 0xFF) << 12) | (reg(rd) << 7) | 0x6F


_R_OPS = {
    "add": (0, 0), "sub": (0, 0x20), "sll": (1, 0), "slt": (2, 0), "sltu": (3, 0),
    "xor": (4, 0), "srl": (5, 0), "sra": (5, 0x20), "or_": (6, 0), "and_": (7, 0),
    "mul": (0, 1), "mulh": (1, 1), "mulhsu": (2, 1), "mulhu": (3, 1),
    "div": (4, 1), "divu": (5, 1), "rem": (6, 1), "remu": (7, 1),
}
_I_OPS = {"addi": 0, "slti": 2, "sltiu": 3, "xori": 4, "ori": 6, "andi": 7}
_LOADS = {"lb": 0, "lh": 1, "lw": 2, "lbu": 4, "lhu": 5}
_STORES = {"sb": 0, "sh": 1, "sw": 2}
_BRANCHES = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}
_CSR_OPS = {"csrrw": 1, "csrrs": 2, "csrrc": 3, "csrrwi": 5, "csrrsi": 6, "csrrci": 7}


class Asm:
    def __init__(self, base: int = 0x8000_0000) -> None:
        self.base = base
        self._items: list[int | Callable[[int], int]] = []
        self.labels: dict[str, int] = {}

    @property
    def pc(self) -> int:
        return self.base + 4 * len(self._items)

    def label(self, name: str) -> int:
        self.labels[name] = self.pc
        return self.pc

    def word(self, value: int) -> int:
        self._items.append(value & 0xFFFFFFFF)
        return value & 0xFFFFFFFF

    def code(self) -> bytes:
        out = bytearray()
        for i, item in enumerate(self._items):
            word = item(self.base + 4 * i) if callable(item) else item
            out += word.to_bytes(4, "little")
        return bytes(out)

    def _target(self, target: Target) -> int:
        return self.labels[target] if isinstance(target, str) else target

    def _rel(self, encode: Callable[[int], int], target: Target) -> None:
        if isinstance(target, int):
            self.word(encode(target - self.pc))
        else:
            self._items.append(lambda pc: encode(self._target(target) - pc))

    # base instructions --------------------------------------------------------------
    def lui(self, rd: Reg, imm: int) -> int:
        return self.word(u_type(0x37, rd, imm << 12))

    def auipc(self, rd: Reg, imm: int) -> int:
        return self.word(u_type(0x17, rd, imm << 12))

    def jal(self, rd: Reg, target: Target) -> None:
        self._rel(lambda off: j_type(rd, off), target)

    def jalr(self, rd: Reg, rs1: Reg, imm: int = 0) -> int:
        return self.word(i_type(0x67, 0, rd, rs1, imm))

    def branch(self, name: str, rs1: Reg, rs2: Reg, target: Target) -> None:
        self._rel(lambda off: b_type(_BRANCHES[name], rs1, rs2, off), target)

    def load(self, name: str, rd: Reg, rs1: Reg, imm: int = 0) -> int:
        return self.word(i_type(0x03, _LOADS[name], rd, rs1, imm))

    def store(self, name: str, rs2: Reg, rs1: Reg, imm: int = 0) -> int:
        return self.word(s_type(0x23, _STORES[name], rs1, rs2, imm))

    def opimm(self, name: str, rd: Reg, rs1: Reg, imm: int) -> int:
        return self.word(i_type(0x13, _I_OPS[name], rd, rs1, imm))

    def shift(self, name: str, rd: Reg, rs1: Reg, shamt: int) -> int:
        f3, f7 = {"slli": (1, 0), "srli": (5, 0), "srai": (5, 0x20)}[name]
        return self.word(r_type(0x13, f3, f7, rd, rs1, shamt & 31))

    def op(self, name: str, rd: Reg, rs1: Reg, rs2: Reg) -> int:
        f3, f7 = _R_OPS[name]
        return self.word(r_type(0x33, f3, f7, rd, rs1, rs2))

    def csr(self, name: str, rd: Reg, csr: int | str, src: Reg) -> int:
        num = CSRS[csr] if isinstance(csr, str) else csr
        rs1 = src if name.endswith("i") else reg(src)
        if not isinstance(rs1, int) or not 0 <= rs1 < 32:
            raise ValueError(f"bad CSR source {src!r}")
        return self.word((num << 20) | (rs1 << 15) | (_CSR_OPS[name] << 12) | (reg(rd) << 7) | 0x73)

    def fence(self) -> int:
        return self.word(0x0FF0000F)

    def fence_i(self) -> int:
        return self.word(0x0000100F)

    def ecall(self) -> int:
        return self.word(0x00000073)

    def ebreak(self) -> int:
        return self.word(0x00100073)

    def mret(self) -> int:
        return self.word(0x30200073)

    def wfi(self) -> int:
        return self.word(0x10500073)

    # pseudo-instructions ------------------------------------------------------------
    def li(self, rd: Reg, value: int) -> None:
        value &= 0xFFFFFFFF
        low = ((value & 0xFFF) ^ 0x800) - 0x800
        high = ((value - low) >> 12) & 0xFFFFF
        if high:
            self.lui(rd, high)
            if low:
                self.opimm("addi", rd, rd, low)
        else:
            self.opimm("addi", rd, "zero", low)

    def la(self, rd: Reg, target: Target) -> None:
        """Load an absolute address (label or int) with lui+addi."""
        def hi(pc: int) -> int:
            value = self._target(target)
            return u_type(0x37, rd, value - (((value & 0xFFF) ^ 0x800) - 0x800))

        def lo(pc: int) -> int:
            value = self._target(target)
            return i_type(0x13, 0, rd, rd, ((value & 0xFFF) ^ 0x800) - 0x800)

        self._items.append(hi)
        self._items.append(lo)

    def mv(self, rd: Reg, rs: Reg) -> int:
        return self.opimm("addi", rd, rs, 0)

    def nop(self) -> int:
        return self.opimm("addi", "zero", "zero", 0)

    def j(self, target: Target) -> None:
        self.jal("zero", target)

    def ret(self) -> int:
        return self.jalr("zero", "ra", 0)

    def __getattr__(self, name: str) -> Callable[..., object]:
        """`a.add(rd, rs1, rs2)`, `a.lw(rd, rs1, imm)`, `a.bne(rs1, rs2, target)`, ..."""
        for table, method in ((_R_OPS, self.op), (_I_OPS, self.opimm), (_LOADS, self.load),
                              (_STORES, self.store), (_BRANCHES, self.branch),
                              (_CSR_OPS, self.csr)):
            if name in table:
                return lambda *args, _m=method, _n=name: _m(_n, *args)
        if name in ("slli", "srli", "srai"):
            return lambda *args: self.shift(name, *args)
        raise AttributeError(name)


def boot(
    program: Asm | bytes,
    *,
    translate: bool = True,
    translate_after: int = 0,
    ram_size: int = 0x10000,
    bus: Bus | None = None,
    mtime: Callable[[], int] | None = None,
) -> Cpu:
    """A bare Cpu with `program` at the start of RAM (0x8000_0000) and pc there.

    Translation starts at once (translate_after=0) so tests exercise translated code."""
    from emu.core.bus import Bus
    from emu.cpu.cpu import Cpu

    code = program.code() if isinstance(program, Asm) else program
    ram = bytearray(ram_size)
    ram[:len(code)] = code
    return Cpu(bus or Bus(), ram, 0x8000_0000, mtime or (lambda: 0), translate=translate,
               translate_after=translate_after)
