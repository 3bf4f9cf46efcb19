"""`toynic -kernel ...` as a process: console on stdout, exit status from the guest,
one-line errors for bad kernels and options, one-line report for a fatal guest trap."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emu.board.layout import RAM_BASE, UART_BASE
from emu.board.loader import build_elf
from tests.rvasm import Asm
from tests.rvguest import exit_with, power_off, write_guest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "emu" / "guests"


def toynic(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "emu", *args], cwd=ROOT, input=stdin,
                          capture_output=True, timeout=60)


def committed(name: str) -> Path:
    path = BIN / name
    assert path.is_file(), f"{path} is missing: the guest ELFs are committed"
    return path


def test_hello_prints_its_line_and_exits_zero() -> None:
    result = toynic("-kernel", str(committed("hello.elf")), "-nographic")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [b"Hello from toynic!"]
    assert result.stderr == b""


def test_guest_exit_3_is_toynic_exit_3() -> None:
    result = toynic("-kernel", str(committed("exit3.elf")))
    assert result.returncode == 3
    assert result.stderr == b""


def test_append_words_become_argv(tmp_path: Path) -> None:
    asm = Asm()
    exit_with(asm, "a0")
    path = write_guest(tmp_path, asm)
    result = toynic("-kernel", str(path), "-append", "one  two three", "-m", "1M",
                    "-icount", "shift=2,sleep=off")
    assert result.returncode == 4, result.stderr


def test_fatal_guest_trap_is_one_line_and_exit_1(tmp_path: Path) -> None:
    asm = Asm()
    asm.word(0xFFFF_FFFF)
    power_off(asm)
    path = write_guest(tmp_path, asm)
    result = toynic("-kernel", str(path))
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "toynic: guest fault: illegal instruction (cause 2) at pc=0x80000000, mtval=0xffffffff"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "could not load kernel: No such file or directory"),
        (lambda p: p.write_text("not an elf"), "not an ELF file"),
        (lambda p: p.write_bytes(build_elf(RAM_BASE, [(RAM_BASE, b"\0" * 4)], e_machine=62)),
         "not a RISC-V ELF file"),
        (lambda p: p.write_bytes(build_elf(RAM_BASE, [(RAM_BASE, b"\0" * 4)], ei_class=2)),
         "not a 32-bit ELF file"),
        (lambda p: p.write_bytes(build_elf(0x1000, [(0x1000, b"\0" * 4)])),
         "lies outside RAM"),
    ],
)
def test_bad_kernels_are_one_line_errors(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "kernel.elf"
    make(path)
    result = toynic("-kernel", str(path))
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"toynic: -kernel {path}: ")
    assert message in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-icount", "shift=11"], "shift must be between 0 and 10"),
        (["-device", "e1000,netdev=n0"], "'e1000' is not a valid device model name"),
    ],
)
def test_bad_machine_options_are_one_line_errors(tmp_path: Path, args: list[str],
                                                 message: str) -> None:
    asm = Asm()
    power_off(asm)
    result = toynic("-kernel", str(write_guest(tmp_path, asm)), *args)
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_timer_guest_output_is_identical_run_after_run() -> None:
    path = str(committed("timer.elf"))
    first = toynic("-kernel", path, "-append", "ticks=3 period=1", "-icount", "shift=0,sleep=off")
    second = toynic("-kernel", path, "-append", "ticks=3 period=1", "-icount", "shift=0")
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    assert first.stdout.count(b"timer: tick ") == 3


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_run_with_status_zero(tmp_path: Path, signum: int) -> None:
    asm = Asm()
    asm.li("s1", UART_BASE)
    for ch in b"R\n":
        asm.li("t0", ch)
        asm.sb("t0", "s1", 0)
    asm.label("spin")
    asm.j("spin")
    path = write_guest(tmp_path, asm)
    proc = subprocess.Popen([sys.executable, "-m", "emu", "-kernel", str(path)], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the guest never printed"
        assert proc.stdout.readline() == b"R\n"
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
