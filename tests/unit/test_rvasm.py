"""tests.rvasm, the assembler of the tests' bare-metal guests, checked against GNU as: its
hand encodings agree with what riscv64-unknown-elf-as produces (when it is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.netsupport import unavailable
from tests.rvasm import Asm


def sample() -> tuple[Asm, str]:
    """The same program as Asm calls and as GNU assembler text."""
    asm = Asm()
    asm.label("top")
    asm.li("t0", 0x1000_0000)
    asm.li("t1", 0x5555)
    asm.li("t2", -1)
    asm.li("a0", 0x7FF)
    asm.li("a1", 0x12345800)
    asm.lw("t1", "s3", -8)
    asm.sw("t2", "s4", 4)
    asm.sb("t3", "s1", 0)
    asm.lbu("t0", "s1", 5)
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
        code = asm.code()
        words = [int.from_bytes(code[i:i + 4], "little") for i in range(0, len(code), 4)]
        total = 0
        for word in words:
            if word & 0x7F == 0x37:
                total = word & 0xFFFFF000
            else:
                imm = word >> 20
                total += imm - 0x1000 if imm & 0x800 else imm
        assert total & 0xFFFF_FFFF == value & 0xFFFF_FFFF
