"""A tiny RV32I assembler for test guests that need no cross compiler, checked against GNU as.

Other machine tests import `Asm` and `guest_elf` from here; the tests below make sure the
hand encodings agree with what riscv64-unknown-elf-as produces (when it is installed).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from emu.board.layout import POWER_BASE, POWER_FAIL, POWER_PASS, RAM_BASE
from emu.board.loader import build_elf
from tests.netsupport import unavailable

ABI_NAMES = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
    "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
    "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
)
REGS = {name: i for i, name in enumerate(ABI_NAMES)}
CSRS = {"mstatus": 0x300, "mie": 0x304, "mtvec": 0x305, "mepc": 0x341, "mcause": 0x342,
        "mtval": 0x343}


def r(name: str) -> int:
    return REGS[name]


class Asm:
    """Appends instruction words; branch/jump targets may be labels resolved by `code()`."""

    def __init__(self, base: int = RAM_BASE) -> None:
        self.base = base
        self.words: list[int] = []
        self.labels: dict[str, int] = {}
        self.fixups: list[tuple[int, str, str, int, int]] = []

    @property
    def here(self) -> int:
        return self.base + 4 * len(self.words)

    def label(self, name: str) -> None:
        self.labels[name] = self.here

    def emit(self, word: int) -> None:
        self.words.append(word & 0xFFFF_FFFF)

    def i_type(self, op: int, f3: int, rd: str, rs1: str, imm: int) -> None:
        self.emit((imm & 0xFFF) << 20 | r(rs1) << 15 | f3 << 12 | r(rd) << 7 | op)

    def s_type(self, f3: int, rs2: str, rs1: str, imm: int) -> None:
        self.emit((imm >> 5 & 0x7F) << 25 | r(rs2) << 20 | r(rs1) << 15 | f3 << 12
                  | (imm & 0x1F) << 7 | 0x23)

    def lui(self, rd: str, imm20: int) -> None:
        self.emit((imm20 & 0xFFFFF) << 12 | r(rd) << 7 | 0x37)

    def addi(self, rd: str, rs1: str, imm: int) -> None:
        self.i_type(0x13, 0, rd, rs1, imm)

    def li(self, rd: str, value: int) -> None:
        value &= 0xFFFF_FFFF
        low = value & 0xFFF
        low = low - 0x1000 if low & 0x800 else low
        high = ((value - low) >> 12) & 0xFFFFF
        if high:
            self.lui(rd, high)
            if low:
                self.addi(rd, rd, low)
        else:
            self.addi(rd, "zero", low)

    def lw(self, rd: str, imm: int, rs1: str) -> None:
        self.i_type(0x03, 2, rd, rs1, imm)

    def slli(self, rd: str, rs1: str, shamt: int) -> None:
        self.i_type(0x13, 1, rd, rs1, shamt)

    def or_(self, rd: str, rs1: str, rs2: str) -> None:
        self.emit(r(rs2) << 20 | r(rs1) << 15 | 6 << 12 | r(rd) << 7 | 0x33)

    def lbu(self, rd: str, imm: int, rs1: str) -> None:
        self.i_type(0x03, 4, rd, rs1, imm)

    def andi(self, rd: str, rs1: str, imm: int) -> None:
        self.i_type(0x13, 7, rd, rs1, imm)

    def sw(self, rs2: str, imm: int, rs1: str) -> None:
        self.s_type(2, rs2, rs1, imm)

    def sb(self, rs2: str, imm: int, rs1: str) -> None:
        self.s_type(0, rs2, rs1, imm)

    def csrrw(self, rd: str, csr: str, rs1: str) -> None:
        self.i_type(0x73, 1, rd, rs1, CSRS[csr])

    def csrrs(self, rd: str, csr: str, rs1: str) -> None:
        self.i_type(0x73, 2, rd, rs1, CSRS[csr])

    def csrrsi(self, rd: str, csr: str, uimm: int) -> None:
        self.emit(CSRS[csr] << 20 | uimm << 15 | 6 << 12 | r(rd) << 7 | 0x73)

    def csrrci(self, rd: str, csr: str, uimm: int) -> None:
        self.emit(CSRS[csr] << 20 | uimm << 15 | 7 << 12 | r(rd) << 7 | 0x73)

    def csrrc(self, rd: str, csr: str, rs1: str) -> None:
        self.i_type(0x73, 3, rd, rs1, CSRS[csr])

    def wfi(self) -> None:
        self.emit(0x1050_0073)

    def mret(self) -> None:
        self.emit(0x3020_0073)

    def ecall(self) -> None:
        self.emit(0x0000_0073)

    def bne(self, rs1: str, rs2: str, target: str) -> None:
        self.fixups.append((len(self.words), "b", target, r(rs1), r(rs2) << 20 | 1 << 12))
        self.emit(0)

    def beq(self, rs1: str, rs2: str, target: str) -> None:
        self.fixups.append((len(self.words), "b", target, r(rs1), r(rs2) << 20 | 0 << 12))
        self.emit(0)

    def j(self, target: str) -> None:
        self.fixups.append((len(self.words), "j", target, 0, 0))
        self.emit(0)

    def code(self) -> bytes:
        for index, kind, target, rs1, extra in self.fixups:
            offset = self.labels[target] - (self.base + 4 * index)
            if kind == "b":
                word = ((offset >> 12 & 1) << 31 | (offset >> 5 & 0x3F) << 25 | rs1 << 15 | extra
                        | (offset >> 1 & 0xF) << 8 | (offset >> 11 & 1) << 7 | 0x63)
            else:
                word = ((offset >> 20 & 1) << 31 | (offset >> 1 & 0x3FF) << 21
                        | (offset >> 11 & 1) << 20 | (offset >> 12 & 0xFF) << 12 | 0x6F)
            self.words[index] = word
        return b"".join(w.to_bytes(4, "little") for w in self.words)


def power_off(asm: Asm, code: int = 0) -> None:
    """Append the exit sequence (uses t5, t6): POWER_PASS or POWER_FAIL | code << 16."""
    asm.li("t5", POWER_BASE)
    asm.li("t6", POWER_PASS if code == 0 else POWER_FAIL | code << 16)
    asm.sw("t6", 0, "t5")
    park = f"park{len(asm.words)}"
    asm.label(park)
    asm.j(park)


def exit_with(asm: Asm, reg: str) -> None:
    """Append an exit whose status is the value of `reg` (uses t5, t6, and clobbers `reg`)."""
    asm.li("t5", POWER_BASE)
    asm.slli(reg, reg, 16)
    asm.li("t6", POWER_FAIL)
    asm.or_("t6", "t6", reg)
    asm.sw("t6", 0, "t5")
    park = f"park{len(asm.words)}"
    asm.label(park)
    asm.j(park)


def guest_elf(asm: Asm) -> bytes:
    return build_elf(asm.base, [(asm.base, asm.code())])


def write_guest(tmp_path: Path, asm: Asm, name: str = "guest.elf") -> Path:
    path = tmp_path / name
    path.write_bytes(guest_elf(asm))
    return path


def sample() -> tuple[Asm, str]:
    """The same program as Asm calls and as GNU assembler text."""
    asm = Asm()
    asm.label("top")
    asm.li("t0", 0x1000_0000)
    asm.li("t1", 0x5555)
    asm.li("t2", -1)
    asm.li("a0", 0x7FF)
    asm.li("a1", 0x12345800)
    asm.lw("t1", -8, "s3")
    asm.sw("t2", 4, "s4")
    asm.sb("t3", 0, "s1")
    asm.lbu("t0", 5, "s1")
    asm.andi("t0", "t0", 1)
    asm.slli("a0", "a0", 16)
    asm.or_("t6", "t6", "a0")
    asm.csrrw("zero", "mtvec", "t0")
    asm.csrrs("zero", "mie", "t0")
    asm.csrrsi("zero", "mstatus", 8)
    asm.csrrci("zero", "mstatus", 8)
    asm.csrrc("zero", "mie", "t0")
    asm.bne("s2", "zero", "top")
    asm.beq("s2", "t1", "end")
    asm.wfi()
    asm.mret()
    asm.ecall()
    asm.label("end")
    asm.j("top")
    text = """
top:
    lui t0, 0x10000
    lui t1, 0x5
    addi t1, t1, 0x555
    addi t2, zero, -1
    addi a0, zero, 0x7ff
    lui a1, 0x12346
    addi a1, a1, -0x800
    lw t1, -8(s3)
    sw t2, 4(s4)
    sb t3, 0(s1)
    lbu t0, 5(s1)
    andi t0, t0, 1
    slli a0, a0, 16
    or t6, t6, a0
    csrrw zero, mtvec, t0
    csrrs zero, mie, t0
    csrrsi zero, mstatus, 8
    csrrci zero, mstatus, 8
    csrrc zero, mie, t0
    bne s2, zero, top
    beq s2, t1, end
    wfi
    mret
    ecall
end:
    jal zero, top
"""
    return asm, text


def test_encodings_match_gnu_as(tmp_path: Path) -> None:
    gas = shutil.which("riscv64-unknown-elf-as")
    objcopy = shutil.which("riscv64-unknown-elf-objcopy")
    if gas is None or objcopy is None:
        unavailable("riscv64-unknown-elf binutils not installed")
    asm, text = sample()
    source = tmp_path / "s.S"
    source.write_text(".option norvc\n.option norelax\n" + text)
    obj = tmp_path / "s.o"
    raw = tmp_path / "s.bin"
    subprocess.run([gas, "-march=rv32i_zicsr", "-mabi=ilp32", "-o", str(obj), str(source)],
                   check=True)
    subprocess.run([objcopy, "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)
    assert asm.code() == raw.read_bytes()


def test_li_covers_sign_boundaries() -> None:
    for value in (0, 1, -1, 0x7FF, 0x800, -0x800, -0x801, 0x8000_0000, 0xFFFF_F800):
        asm = Asm()
        asm.li("a0", value)
        words = asm.words
        total = 0
        for word in words:
            if word & 0x7F == 0x37:
                total = word & 0xFFFFF000
            else:
                imm = word >> 20
                total += imm - 0x1000 if imm & 0x800 else imm
        assert total & 0xFFFF_FFFF == value & 0xFFFF_FFFF
