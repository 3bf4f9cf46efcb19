"""The committed guest ELF files (emu/guests/, shipped as package data) are exactly what
`make -C guests` builds from the sources.

Rebuilds every program into a temporary directory with the cross compiler (skipped when
`riscv64-unknown-elf-gcc` is absent, a failure under CI=true) and compares byte for byte.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.netsupport import unavailable

GUESTS = Path(__file__).resolve().parents[2] / "guests"
BUILT = GUESTS.parent / "emu" / "guests"
CC = "riscv64-unknown-elf-gcc"
PROGRAMS = sorted(p.stem for p in GUESTS.glob("*.c"))


def test_every_program_has_a_committed_elf() -> None:
    committed = sorted(p.name.removesuffix(".elf") for p in BUILT.glob("*.elf"))
    assert committed == PROGRAMS


def test_make_builds_into_the_shipped_directory() -> None:
    dry_run = subprocess.run(["make", "-n", "-B", "-C", str(GUESTS)], capture_output=True,
                             text=True, check=True, timeout=60).stdout
    assert "-o ../emu/guests/hello.elf " in dry_run


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which(CC) is None:
        unavailable(f"{CC} not installed (Debian package gcc-riscv64-unknown-elf)")
    out = tmp_path_factory.mktemp("guest-bin")
    subprocess.run(
        ["make", "-s", "-j2", "-C", str(GUESTS), f"BINDIR={out}", f"OBJDIR={out / 'obj'}"],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return out


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", PROGRAMS)
def test_rebuild_matches_committed(rebuilt: Path, name: str) -> None:
    fresh = (rebuilt / f"{name}.elf").read_bytes()
    committed = (BUILT / f"{name}.elf").read_bytes()
    assert fresh == committed, f"emu/guests/{name}.elf is stale: run `make -C guests` and commit"


def test_elf_files_carry_no_build_paths() -> None:
    for elf in BUILT.glob("*.elf"):
        data = elf.read_bytes()
        assert str(GUESTS).encode() not in data, elf.name
        assert b"/work/" not in data and b"/tmp/" not in data and b"/home/" not in data, elf.name
