"""ELF32 loader — QEMU's hw/core/loader.c `load_elf` for `-kernel`, reduced to what toynic runs.

Accepts a little-endian ELF32 RISC-V executable (ET_EXEC, EM_RISCV) and copies each
PT_LOAD segment to its physical address (p_paddr, as QEMU does), zero-filling up to
p_memsz. Anything else is refused with a UserError saying what is wrong. The header and
program headers are declared once with `construct`; `build_elf` uses the same
declarations to write small executables (tests and benchmarks make guests with it).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from construct import Array, Bytes, Const, ConstructError, Int8ul, Int16ul, Int32ul, Struct

from emu.core.errors import UserError

ELFMAG = b"\x7fELF"
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1
ET_EXEC = 2
EM_RISCV = 243
PT_LOAD = 1
PF_X, PF_W, PF_R = 1, 2, 4

# A kernel file bigger than this is refused before it is read: toynic guests are a few
# KiB, and reading must stay bounded whatever the user names.
MAX_KERNEL_SIZE = 64 << 20

EHDR_SIZE = 52
PHDR_SIZE = 32

ElfIdent = Struct(
    "magic" / Const(ELFMAG),
    "ei_class" / Int8ul,
    "ei_data" / Int8ul,
    "ei_version" / Int8ul,
    "ei_osabi" / Int8ul,
    "ei_pad" / Bytes(8),
)

Elf32Ehdr = Struct(
    "e_ident" / ElfIdent,
    "e_type" / Int16ul,
    "e_machine" / Int16ul,
    "e_version" / Int32ul,
    "e_entry" / Int32ul,
    "e_phoff" / Int32ul,
    "e_shoff" / Int32ul,
    "e_flags" / Int32ul,
    "e_ehsize" / Int16ul,
    "e_phentsize" / Int16ul,
    "e_phnum" / Int16ul,
    "e_shentsize" / Int16ul,
    "e_shnum" / Int16ul,
    "e_shstrndx" / Int16ul,
)

Elf32Phdr = Struct(
    "p_type" / Int32ul,
    "p_offset" / Int32ul,
    "p_vaddr" / Int32ul,
    "p_paddr" / Int32ul,
    "p_filesz" / Int32ul,
    "p_memsz" / Int32ul,
    "p_flags" / Int32ul,
    "p_align" / Int32ul,
)


# The built guest programs ship inside the package (guests/ holds their sources).
GUEST_DIR = Path(__file__).resolve().parents[1] / "guests"


def guest_elf(name: str) -> Path:
    """The shipped guest program called `name` (e.g. "echo" for emu/guests/echo.elf)."""
    return GUEST_DIR / f"{name}.elf"


@dataclass(frozen=True)
class Segment:
    addr: int
    data: bytes
    memsz: int


@dataclass(frozen=True)
class ElfImage:
    entry: int
    segments: tuple[Segment, ...]

    @property
    def end(self) -> int:
        """One past the highest loaded byte."""
        return max((s.addr + s.memsz for s in self.segments), default=0)


def parse_elf(blob: bytes) -> ElfImage:
    """Validate `blob` as a RISC-V ELF32 LE executable and return its loadable segments."""
    if len(blob) < 6 or blob[:4] != ELFMAG:
        raise UserError("not an ELF file")
    if blob[4] != ELFCLASS32:
        kind = "64-bit" if blob[4] == ELFCLASS64 else f"class {blob[4]}"
        raise UserError(f"not a 32-bit ELF file ({kind}); toynic runs RV32 programs")
    if blob[5] != ELFDATA2LSB:
        raise UserError("not a little-endian ELF file")
    try:
        ehdr = Elf32Ehdr.parse(blob)
    except ConstructError:
        raise UserError("truncated ELF header") from None
    if ehdr.e_machine != EM_RISCV:
        raise UserError(f"not a RISC-V ELF file (e_machine {ehdr.e_machine}, expected {EM_RISCV})")
    if ehdr.e_type != ET_EXEC:
        raise UserError(f"not an executable ELF file (e_type {ehdr.e_type}, expected ET_EXEC)")
    if ehdr.e_phnum and ehdr.e_phentsize != PHDR_SIZE:
        raise UserError(f"bad program header size {ehdr.e_phentsize}")
    table_end = ehdr.e_phoff + ehdr.e_phnum * PHDR_SIZE
    if table_end > len(blob):
        raise UserError("truncated ELF file: program headers run past the end")
    phdrs = Array(ehdr.e_phnum, Elf32Phdr).parse(blob[ehdr.e_phoff:table_end])
    segments = []
    for ph in phdrs:
        if ph.p_type != PT_LOAD:
            continue
        if ph.p_filesz > ph.p_memsz:
            raise UserError(f"segment at {ph.p_paddr:#010x}: file size exceeds memory size")
        if ph.p_offset + ph.p_filesz > len(blob):
            raise UserError(f"truncated ELF file: segment at {ph.p_paddr:#010x} runs past the end")
        data = blob[ph.p_offset:ph.p_offset + ph.p_filesz]
        segments.append(Segment(ph.p_paddr, bytes(data), ph.p_memsz))
    if not segments:
        raise UserError("ELF file has no loadable segment")
    return ElfImage(ehdr.e_entry, tuple(segments))


def load_elf(path: str, ram: bytearray, ram_base: int) -> ElfImage:
    """Read the ELF file at `path` into `ram` (guest address `ram_base` is `ram[0]`)."""
    image = parse_elf(read_kernel(path))
    ram_end = ram_base + len(ram)
    for seg in image.segments:
        if seg.memsz and not ram_base <= seg.addr <= seg.addr + seg.memsz <= ram_end:
            raise UserError(
                f"segment {seg.addr:#010x}-{seg.addr + seg.memsz - 1:#010x} lies outside "
                f"RAM {ram_base:#010x}-{ram_end - 1:#010x}"
            )
    if not ram_base <= image.entry < ram_end:
        raise UserError(f"entry point {image.entry:#010x} lies outside RAM")
    for seg in image.segments:
        start = seg.addr - ram_base
        ram[start:start + len(seg.data)] = seg.data
        ram[start + len(seg.data):start + seg.memsz] = bytes(seg.memsz - len(seg.data))
    return image


def read_kernel(path: str) -> bytes:
    """The bytes of the regular file at `path`, at most MAX_KERNEL_SIZE of them. Opened
    non-blocking, so a FIFO cannot block the open; devices and FIFOs are refused, as
    they may never end (/dev/zero)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise UserError(f"could not load kernel: {err.strerror or err}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UserError("could not load kernel: Is a directory")
        if not stat.S_ISREG(mode):
            raise UserError(f"could not load kernel: not a regular file ({_file_kind(mode)})")
        blob = _read_at_most(fd, MAX_KERNEL_SIZE + 1)
    except OSError as err:
        raise UserError(f"could not load kernel: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(blob) > MAX_KERNEL_SIZE:
        raise UserError(f"could not load kernel: the file is too large (the limit is "
                        f"{MAX_KERNEL_SIZE >> 20} MiB)")
    return blob


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return f"file type {stat.S_IFMT(mode):#o}"


def build_elf(
    entry: int,
    segments: list[tuple[int, bytes]],
    *,
    ei_class: int = ELFCLASS32,
    ei_data: int = ELFDATA2LSB,
    e_type: int = ET_EXEC,
    e_machine: int = EM_RISCV,
) -> bytes:
    """A minimal ELF32 executable: one PT_LOAD (RWX) per (address, bytes) pair."""
    phoff = EHDR_SIZE
    offset = phoff + PHDR_SIZE * len(segments)
    phdrs = []
    for addr, data in segments:
        phdrs.append(dict(p_type=PT_LOAD, p_offset=offset, p_vaddr=addr, p_paddr=addr,
                          p_filesz=len(data), p_memsz=len(data),
                          p_flags=PF_R | PF_W | PF_X, p_align=4))
        offset += len(data)
    header = Elf32Ehdr.build(dict(
        e_ident=dict(ei_class=ei_class, ei_data=ei_data, ei_version=EV_CURRENT, ei_osabi=0,
                     ei_pad=bytes(8)),
        e_type=e_type, e_machine=e_machine, e_version=EV_CURRENT, e_entry=entry,
        e_phoff=phoff, e_shoff=0, e_flags=0, e_ehsize=EHDR_SIZE, e_phentsize=PHDR_SIZE,
        e_phnum=len(segments), e_shentsize=0, e_shnum=0, e_shstrndx=0,
    ))
    table = b"".join(Elf32Phdr.build(ph) for ph in phdrs)
    return header + table + b"".join(data for _, data in segments)
