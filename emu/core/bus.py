"""Bus and IsaBus — QEMU's MemoryRegion dispatch (system/memory.c) and the ISA I/O space.

This is the only place guest addresses are decoded. A region is anything with
`read(offset, size) -> int` and `write(offset, size, value)`; offsets are relative to the
region's base and `size` is 1, 2 or 4 bytes, little-endian. An access no region claims
raises `BusError` so the CPU can turn it into the matching access fault.

`IsaBus` is the 64 KiB ISA I/O port space the board exposes as one MMIO window; boards
such as the NE2000 map their I/O ports into it. Unclaimed ports read as all-ones and
ignore writes, as on a real ISA bus. A 16/32-bit access at a port that is not a
multiple of its size reads 0 and its write is dropped, before any board sees it: QEMU's
memory core refuses it the same way (x86 `inw 0x301` reads 0; docs/quirks.md I1).

`Bus.route(addr, size)` resolves an access to the handlers that finally serve it, looking
through any `Router` on the way (`IsaBus`, or a board with a port of its own such as the
NE2000's data port): translated code caches the answer per instruction, as QEMU's softmmu
TLB caches a MemoryRegionSection, and calls those handlers directly while the address
stays in the cached range. `on_change` tells such caches that the map changed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import NamedTuple, Protocol, runtime_checkable


class Region(Protocol):
    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


class Route(NamedTuple):
    """Accesses of one size starting at lo <= addr < hi are all served by `read(addr -
    base, size)` and `write(addr - base, size, value)`.

    A port that a driver reads or writes many times in a row (a data port: the string
    I/O of `rep insw`/`rep outsw`) may also offer bursts, which a CPU uses for a copy
    loop: `read_burst(offset, size, count)` returns the little-endian bytes of at most
    `count` successive reads, and `write_burst(offset, size, data)` performs successive
    writes of the `size`-byte items of `data`, returning how many it took. A burst stops
    before any access that would do more than move data (raise an interrupt, finish a
    transfer, depend on the time or the pc), which the CPU then performs on its own."""

    lo: int
    hi: int
    base: int
    read: Callable[[int, int], int]
    write: Callable[[int, int, int], None]
    read_burst: Callable[[int, int, int], bytes] | None = None
    write_burst: Callable[[int, int, bytes], int] | None = None


@runtime_checkable
class Router(Protocol):
    """A region that dispatches on (an I/O window, a board's ports), so a route can skip it."""

    def route(self, offset: int, size: int) -> Route | None: ...


@runtime_checkable
class Remappable(Protocol):
    """A region whose own map can change after it is mapped (routes through it expire)."""

    def on_change(self, callback: Callable[[], None]) -> None: ...


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


PAGE_SHIFT = 12


class Bus:
    """A flat address space of non-overlapping regions.

    Decoding is cached per 4 KiB page that lies wholly inside one region, so the common
    case (a guest driver hammering one device register) is a dict lookup, not a search.
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._entries: list[tuple[int, int, Region, str]] = []
        self._pages: dict[int, tuple[int, int, Region]] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a mapping changes here or in a Router mapped here."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        self._pages.clear()
        for callback in self._listeners:
            callback()

    def map(self, base: int, size: int, region: Region, name: str) -> None:
        end = base + size
        for start, other_end, _, other in self._entries:
            if base < other_end and start < end:
                raise ValueError(f"{name} at {base:#x} overlaps {other} at {start:#x}")
        index = bisect.bisect(self._starts, base)
        self._starts.insert(index, base)
        self._entries.insert(index, (base, end, region, name))
        if isinstance(region, Remappable):
            region.on_change(self._changed)
        self._changed()

    def _decode(self, addr: int, size: int, write: bool) -> tuple[int, Region]:
        hit = self._pages.get(addr >> PAGE_SHIFT)
        if hit is not None and addr + size <= hit[1]:
            return hit[0], hit[2]
        index = bisect.bisect(self._starts, addr) - 1
        if index < 0:
            raise BusError(addr, write)
        base, end, region, _ = self._entries[index]
        if addr + size > end:
            raise BusError(addr, write)
        page = addr >> PAGE_SHIFT
        if base <= page << PAGE_SHIFT and (page + 1) << PAGE_SHIFT <= end:
            self._pages[page] = (base, end, region)
        return base, region

    def route(self, addr: int, size: int) -> Route | None:
        """Where an access of `size` bytes at `addr` goes, and the range of addresses
        that go there too; None if no region claims it."""
        index = bisect.bisect(self._starts, addr) - 1
        if index < 0:
            return None
        base, end, region, _ = self._entries[index]
        if addr + size > end:
            return None
        if isinstance(region, Router):
            return _shifted(region.route(addr - base, size), base)
        return Route(base, end - size + 1, base, region.read, region.write)

    def read(self, addr: int, size: int) -> int:
        base, region = self._decode(addr, size, False)
        return region.read(addr - base, size)

    def write(self, addr: int, size: int, value: int) -> None:
        base, region = self._decode(addr, size, True)
        region.write(addr - base, size, value)

    def regions(self) -> list[tuple[int, int, str]]:
        return [(base, end - base, name) for base, end, _, name in self._entries]


class IsaBus:
    """ISA I/O ports 0x0000-0xFFFF; a Region itself, so a board maps it as an MMIO window."""

    SIZE = 0x10000
    NUM_IRQS = 16  # IRQ 0-15 (QEMU: ISA_NUM_IRQS)

    def __init__(self) -> None:
        self._ports = Bus()
        # Port -> (board base, board end, board): boards have a few dozen ports each.
        self._table: dict[int, tuple[int, int, Region]] = {}

    def on_change(self, callback: Callable[[], None]) -> None:
        self._ports.on_change(callback)

    def map(self, port: int, size: int, region: Region, name: str) -> None:
        self._ports.map(port, size, region, name)
        for p in range(port, port + size):
            self._table[p] = (port, port + size, region)

    def route(self, offset: int, size: int) -> Route | None:
        """Byte accesses route to the board for its whole port range; wider ones to the
        board for this one port (its alignment is checked here, once), and anything
        refused or unclaimed to this bus itself, which answers it as `read` does. A
        board that is a Router routes on from its own ports."""
        hit = self._table.get(offset)
        if offset & (size - 1) or hit is None or offset + size > hit[1]:
            return Route(offset, offset + 1, 0, self.read, self.write)
        port, end, board = hit
        if isinstance(board, Router):
            return _shifted(board.route(offset - port, size), port)
        if size == 1:
            return Route(port, end, port, board.read, board.write)
        return Route(offset, offset + 1, port, board.read, board.write)

    def read(self, offset: int, size: int) -> int:
        if offset & (size - 1):
            return 0
        hit = self._table.get(offset)
        if hit is None or offset + size > hit[1]:
            return (1 << (8 * size)) - 1
        return hit[2].read(offset - hit[0], size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset & (size - 1):
            return
        hit = self._table.get(offset)
        if hit is not None and offset + size <= hit[1]:
            hit[2].write(offset - hit[0], size, value)


def _shifted(route: Route | None, base: int) -> Route | None:
    """A route a Router mapped at `base` gave, in its parent's addresses."""
    if route is None:
        return None
    return route._replace(lo=route.lo + base, hi=route.hi + base, base=route.base + base)
