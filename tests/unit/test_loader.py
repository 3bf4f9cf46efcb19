"""ELF32 loading: PT_LOAD segments land in RAM; everything else is refused clearly."""

from pathlib import Path

import pytest

from emu.board.layout import RAM_BASE
from emu.board.loader import (
    EHDR_SIZE,
    ELFCLASS64,
    Elf32Ehdr,
    build_elf,
    load_elf,
    parse_elf,
)
from emu.core.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
RAM_SIZE = 64 << 10


def load(tmp_path: Path, blob: bytes) -> tuple[bytearray, int]:
    path = tmp_path / "k.elf"
    path.write_bytes(blob)
    ram = bytearray(RAM_SIZE)
    return ram, load_elf(str(path), ram, RAM_BASE).entry


def test_segments_are_copied_to_their_addresses(tmp_path: Path) -> None:
    blob = build_elf(RAM_BASE + 8, [(RAM_BASE, b"\x13\x00\x00\x00"), (RAM_BASE + 0x100, b"data")])
    ram, entry = load(tmp_path, blob)
    assert entry == RAM_BASE + 8
    assert ram[:4] == b"\x13\x00\x00\x00"
    assert ram[0x100:0x104] == b"data"


def test_memsz_beyond_filesz_is_zeroed(tmp_path: Path) -> None:
    blob = bytearray(build_elf(RAM_BASE, [(RAM_BASE, b"abcd")]))
    memsz_at = EHDR_SIZE + 20
    blob[memsz_at:memsz_at + 4] = (16).to_bytes(4, "little")
    path = tmp_path / "k.elf"
    path.write_bytes(bytes(blob))
    ram = bytearray(b"\xee" * RAM_SIZE)
    load_elf(str(path), ram, RAM_BASE)
    assert ram[:16] == b"abcd" + bytes(12)
    assert ram[16] == 0xEE


def header_variant(**fields: int) -> bytes:
    blob = bytearray(build_elf(RAM_BASE, [(RAM_BASE, b"\x13\x00\x00\x00")]))
    header = Elf32Ehdr.parse(bytes(blob))
    for key, value in fields.items():
        if key.startswith("ei_"):
            header.e_ident[key] = value
        else:
            header[key] = value
    blob[:EHDR_SIZE] = Elf32Ehdr.build(header)
    return bytes(blob)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "not an ELF file"),
        (b"#!/bin/sh\necho hi\n", "not an ELF file"),
        (header_variant(ei_class=ELFCLASS64), "not a 32-bit ELF file (64-bit)"),
        (header_variant(ei_data=2), "not a little-endian ELF file"),
        (header_variant(e_machine=62), "not a RISC-V ELF file (e_machine 62, expected 243)"),
        (header_variant(e_type=3), "not an executable ELF file (e_type 3"),
        (header_variant(e_phnum=0), "no loadable segment"),
        (header_variant(e_phnum=40), "truncated ELF file"),
        (b"\x7fELF\x01\x01\x01" + bytes(10), "truncated ELF header"),
    ],
)
def test_rejections_are_user_errors(tmp_path: Path, blob: bytes, message: str) -> None:
    with pytest.raises(UserError) as info:
        load(tmp_path, blob)
    assert message in str(info.value)


def test_segment_outside_ram_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="lies outside RAM"):
        load(tmp_path, build_elf(RAM_BASE, [(RAM_BASE + RAM_SIZE - 2, b"abcd")]))
    with pytest.raises(UserError, match="lies outside RAM"):
        load(tmp_path, build_elf(0x1000, [(0x1000, b"abcd")]))


def test_entry_outside_ram_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="entry point 0x00001000"):
        load(tmp_path, build_elf(0x1000, [(RAM_BASE, b"abcd")]))


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="No such file or directory"):
        load_elf(str(tmp_path / "absent.elf"), bytearray(16), RAM_BASE)


def test_builder_output_parses_back() -> None:
    image = parse_elf(build_elf(RAM_BASE + 4, [(RAM_BASE, b"x" * 8)]))
    assert image.entry == RAM_BASE + 4
    assert image.end == RAM_BASE + 8


def test_committed_hello_loads() -> None:
    hello = ROOT / "emu" / "guests" / "hello.elf"
    ram = bytearray(16 << 20)
    image = load_elf(str(hello), ram, RAM_BASE)
    assert image.entry == RAM_BASE
    assert any(ram[:64])
