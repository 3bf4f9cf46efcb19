"""The board with the real CPU: program start, console, power-off, access faults, fatal traps."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from emu.board.layout import (
    CLINT_BASE,
    CLINT_MTIME,
    ISA_BASE,
    PLIC_BASE,
    PLIC_NUM_SOURCES,
    RAM_BASE,
    UART_BASE,
)
from emu.board.loader import build_elf
from emu.board.machine import GUEST_FAULT_STATUS, Machine
from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from tests.rvasm import Asm
from tests.rvguest import echo_line, exit_with, power_off, write_guest

RAM = 1 << 20


@pytest.fixture
def loop():
    main_loop = MainLoop()
    yield main_loop
    main_loop.close()


def machine(loop: MainLoop, **kwargs) -> Machine:
    return Machine(loop, ram_size=RAM, console=io.BytesIO(), stderr=io.StringIO(), **kwargs)


def test_argv_layout_at_top_of_ram(loop: MainLoop, tmp_path: Path) -> None:
    asm = Asm()
    power_off(asm)
    path = write_guest(tmp_path, asm, "prog.elf")
    m = machine(loop)
    m.cpu.x[5] = 99
    m.load_kernel(str(path), "  one two\tthree ")
    x = m.cpu.x
    assert m.cpu.pc == RAM_BASE
    assert x[10] == 4
    argv = x[11]
    sp = x[2]
    assert sp % 16 == 0 and sp <= argv and argv - sp < 16
    assert argv % 4 == 0
    assert all(value == 0 for reg, value in enumerate(x) if reg not in (2, 10, 11))
    words = []
    for i in range(5):
        pointer = m.ram.read(argv - RAM_BASE + 4 * i, 4)
        if i == 4:
            assert pointer == 0
            break
        end = m.ram.data.index(b"\0", pointer - RAM_BASE)
        words.append(bytes(m.ram.data[pointer - RAM_BASE:end]))
    assert words == [b"prog.elf", b"one", b"two", b"three"]
    assert m.ram.data[-1] == 0 and m.ram.data[-6:-1] == b"three"


def test_append_too_long_for_ram_is_a_user_error(loop: MainLoop, tmp_path: Path) -> None:
    asm = Asm()
    power_off(asm)
    path = write_guest(tmp_path, asm)
    m = Machine(loop, ram_size=4096, console=io.BytesIO())
    with pytest.raises(UserError, match="does not fit"):
        m.load_kernel(str(path), "x" * 5000)


def run_guest(loop: MainLoop, tmp_path: Path, asm: Asm, **kwargs) -> tuple[Machine, int]:
    m = machine(loop, **kwargs)
    m.load_kernel(str(write_guest(tmp_path, asm)), "")
    return m, m.run()


def test_console_output_and_exit_codes(loop: MainLoop, tmp_path: Path) -> None:
    asm = Asm()
    asm.li("s1", UART_BASE)
    for ch in b"OK\n":
        asm.li("t0", ch)
        asm.sb("t0", "s1", 0)
    power_off(asm, 3)
    m, status = run_guest(loop, tmp_path, asm)
    assert status == 3 and m.exit_code == 3
    assert m.console.getvalue() == b"OK\n"
    assert m.instret > 0


def test_argc_reaches_the_guest(loop: MainLoop, tmp_path: Path) -> None:
    asm = Asm()
    exit_with(asm, "a0")
    m = machine(loop)
    m.load_kernel(str(write_guest(tmp_path, asm)), "a b c d")
    assert m.run() == 5


def test_unmapped_access_is_a_guest_access_fault(loop: MainLoop, tmp_path: Path) -> None:
    asm = Asm()
    asm.li("t0", RAM_BASE + 0x100)
    asm.csrrw("zero", "mtvec", "t0")
    asm.li("t1", 0x2000_0000)
    asm.lw("t2", "t1", 0)
    power_off(asm, 99)
    handler = Asm(RAM_BASE + 0x100)
    handler.csrrs("a0", "mcause", "zero")
    handler.csrrs("a1", "mtval", "zero")
    exit_with(handler, "a0")
    code = asm.code()
    blob = code + bytes(0x100 - len(code)) + handler.code()
    path = tmp_path / "fault.elf"
    path.write_bytes(build_elf(RAM_BASE, [(RAM_BASE, blob)]))
    m = machine(loop)
    m.load_kernel(str(path), "")
    assert m.run() == 5  # load access fault, taken by the guest's own handler
    assert m.cpu.x[11] == 0x2000_0000


@pytest.mark.parametrize(
    ("address", "word", "report"),
    [
        (None, 0x0000_0000,
         "toynic: guest fault: illegal instruction (cause 2) at pc=0x80000000, mtval=0x00000000"),
        (0x3000_0000, None,
         "toynic: guest fault: store access fault (cause 7) at pc=0x80000008, mtval=0x30000000"),
    ],
)
def test_fatal_trap_is_reported_on_one_line(loop: MainLoop, tmp_path: Path, address, word,
                                            report: str) -> None:
    asm = Asm()
    if word is not None:
        asm.word(word)
    else:
        asm.li("t1", address)
        asm.addi("t2", "zero", 1)
        asm.sw("t2", "t1", 0)
    power_off(asm)
    m, status = run_guest(loop, tmp_path, asm)
    assert status == GUEST_FAULT_STATUS != 0
    assert m.stderr.getvalue() == report + "\n"


def test_isa_window_and_exact_mtime_mid_slice(loop: MainLoop, tmp_path: Path) -> None:
    asm = Asm()
    asm.li("t0", ISA_BASE + 0x300)
    asm.lbu("a0", "t0", 0)
    asm.li("t0", CLINT_BASE + CLINT_MTIME)
    asm.lw("a1", "t0", 0)
    power_off(asm)
    m, status = run_guest(loop, tmp_path, asm, icount_shift=10)
    assert status == 0
    assert m.cpu.x[10] == 0xFF
    # mtime is read by the sixth instruction: 5 retired * 1024 ns, in 100 ns ticks
    assert m.cpu.x[11] == 5 * 1024 // 100


def test_stdin_input_reaches_the_guest_without_loss(loop: MainLoop, tmp_path: Path) -> None:
    asm = Asm()
    echo_line(asm)
    read_fd, write_fd = os.pipe()
    text = b"the quick brown fox jumps over the lazy dog, more than sixteen bytes\n"
    try:
        os.write(write_fd, text)
        m = machine(loop, stdin_fd=read_fd)
        m.load_kernel(str(write_guest(tmp_path, asm)), "")
        assert m.run() == 0
        assert m.console.getvalue() == text
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_unknown_device_model(loop: MainLoop) -> None:
    m = machine(loop)
    with pytest.raises(UserError, match="'e1000' is not a valid device model name"):
        m.add_device(parse_opts("e1000,netdev=n0", "driver"), None)


def test_isa_irq_maps_to_plic_sources(loop: MainLoop) -> None:
    m = machine(loop)
    assert m.isa_irq(9) is m.plic.line(32 + 9)
    with pytest.raises(UserError):
        m.isa_irq(16)
    assert PLIC_NUM_SOURCES > 32 + 15
    m.bus.write(PLIC_BASE + 4 * (32 + 9), 4, 3)  # the PLIC answers at PLIC_BASE
    assert m.plic.priority[32 + 9] == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"icount_shift": 11}, "shift must be between 0 and 10"),
    ({"icount_shift": -1}, "shift must be between 0 and 10"),
    ({"ram_size": 3}, "RAM size"),
    ({"ram_size": 4 << 30}, "RAM size"),
])
def test_bad_machine_options(loop: MainLoop, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        Machine(loop, console=io.BytesIO(), **kwargs)


def test_ne2k_isa_plugs_into_the_isa_window_and_plic(loop: MainLoop) -> None:
    from netdev.net import Net

    net = Net(loop)
    try:
        net.add_netdev(parse_opts("hubport,id=h0,hubid=0", "type"))
        net.add_netdev(parse_opts("hubport,id=h1,hubid=0", "type"))
        m = machine(loop)
        assert m.bus.read(ISA_BASE + 0x300, 1) == 0xFF
        first = m.add_device(parse_opts("ne2k_isa,netdev=h0,irq=5", "driver"), net)
        second = m.add_device(parse_opts("ne2k_isa,netdev=h1,iobase=0x320", "driver"), net)
        assert m.nics == [first, second]
        assert m.bus.read(ISA_BASE + 0x300, 1) != 0xFF
        assert m.bus.read(ISA_BASE + 0x320, 1) != 0xFF
        first.irq.raise_()
        assert m.plic.levels == 1 << (32 + 5)
        second.irq.raise_()
        assert m.plic.levels == 1 << (32 + 5) | 1 << (32 + 9)
    finally:
        net.close()
