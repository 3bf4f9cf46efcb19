"""Bus and IsaBus — QEMU's MemoryRegion dispatch (system/memory.c) and the ISA I/O space.

This is the only place guest addresses are decoded. A region is anything with
`read(offset, size) -> int` and `write(offset, size, value)`; offsets are relative to the
region's base and `size` is 1, 2 or 4 bytes, little-endian. An access no region claims
raises `BusError` so the CPU can turn it into the matching access fault.

`IsaBus` is the 64 KiB ISA I/O port space the board exposes as one MMIO window; boards
such as the NE2000 map their I/O ports into it. Unclaimed ports read as all-ones and
ignore writes, as on a real ISA bus.
"""

from __future__ import annotations

import bisect
from typing import Protocol


class Region(Protocol):
    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


class BusError(Exception):
    """No region answers `addr`; the CPU raises a load/store access fault."""

    def __init__(self, addr: int, write: bool) -> None:
        super().__init__(f"{'store' if write else 'load'} access fault at {addr:#010x}")
        self.addr = addr
        self.write = write


class Ram:
    """Plain memory backed by a bytearray (the CPU also reaches `data` directly)."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.data[offset:offset + size], "little")

    def write(self, offset: int, size: int, value: int) -> None:
        self.data[offset:offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


class Bus:
    """A flat address space of non-overlapping regions."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._entries: list[tuple[int, int, Region, str]] = []

    def map(self, base: int, size: int, region: Region, name: str) -> None:
        end = base + size
        for start, other_end, _, other in self._entries:
            if base < other_end and start < end:
                raise ValueError(f"{name} at {base:#x} overlaps {other} at {start:#x}")
        index = bisect.bisect(self._starts, base)
        self._starts.insert(index, base)
        self._entries.insert(index, (base, end, region, name))

    def find(self, addr: int, size: int = 1) -> tuple[int, Region] | None:
        """The region holding [addr, addr+size) and its base, or None."""
        index = bisect.bisect(self._starts, addr) - 1
        if index < 0:
            return None
        base, end, region, _ = self._entries[index]
        if addr + size > end:
            return None
        return base, region

    def read(self, addr: int, size: int) -> int:
        hit = self.find(addr, size)
        if hit is None:
            raise BusError(addr, write=False)
        base, region = hit
        return region.read(addr - base, size)

    def write(self, addr: int, size: int, value: int) -> None:
        hit = self.find(addr, size)
        if hit is None:
            raise BusError(addr, write=True)
        base, region = hit
        region.write(addr - base, size, value)

    def regions(self) -> list[tuple[int, int, str]]:
        return [(base, end - base, name) for base, end, _, name in self._entries]


class IsaBus:
    """ISA I/O ports 0x0000-0xFFFF; a Region itself, so a board maps it as an MMIO window."""

    SIZE = 0x10000

    def __init__(self) -> None:
        self._ports = Bus()

    def map(self, port: int, size: int, region: Region, name: str) -> None:
        self._ports.map(port, size, region, name)

    def read(self, offset: int, size: int) -> int:
        hit = self._ports.find(offset, size)
        if hit is None:
            return (1 << (8 * size)) - 1
        base, region = hit
        return region.read(offset - base, size)

    def write(self, offset: int, size: int, value: int) -> None:
        hit = self._ports.find(offset, size)
        if hit is not None:
            base, region = hit
            region.write(offset - base, size, value)
