"""Plic — QEMU's SiFive PLIC (hw/intc/sifive_plic.c) with one M-mode context.

Layout (offsets from PLIC_BASE, as on QEMU's `virt`): source priorities at
PLIC_PRIORITY + 4*id, pending bits at PLIC_PENDING, context-0 enable bits at PLIC_ENABLE,
threshold at PLIC_THRESHOLD, claim/complete at PLIC_CLAIM. Sources 1..63 are
level-triggered; source 0 does not exist. Priorities are 3 bits (0 = never interrupts).

A source is pending while its line is high and it is not claimed. Claim returns the
enabled pending source of highest priority above the threshold (lowest id on ties) and
marks it claimed; completing an enabled source un-claims it, so a line still high is
pending again at once. MEIP = some enabled pending source is above the threshold.
"""

from __future__ import annotations

from emu.core.irq import IrqLine

PLIC_NUM_SOURCES = 64
PLIC_PRIORITY = 0x00_0000
PLIC_PENDING = 0x00_1000
PLIC_ENABLE = 0x00_2000
PLIC_THRESHOLD = 0x20_0000
PLIC_CLAIM = 0x20_0004
PRIORITY_MASK = 0x7
WORDS = PLIC_NUM_SOURCES // 32
SOURCE_MASK = ((1 << PLIC_NUM_SOURCES) - 1) & ~1


class Plic:
    """Interrupt sources in, one `meip` line out."""

    def __init__(self, meip: IrqLine) -> None:
        self._meip = meip
        self.priority = [0] * PLIC_NUM_SOURCES
        self.levels = 0
        self.claimed = 0
        self.enable = 0
        self.threshold = 0
        self._lines: dict[int, IrqLine] = {}

    @property
    def pending(self) -> int:
        return self.levels & ~self.claimed

    def line(self, source: int) -> IrqLine:
        """The input wire of `source` (1..PLIC_NUM_SOURCES-1); the same object on every call."""
        if not 0 < source < PLIC_NUM_SOURCES:
            raise ValueError(f"PLIC source {source} out of range 1..{PLIC_NUM_SOURCES - 1}")
        existing = self._lines.get(source)
        if existing is not None:
            return existing
        wire = IrqLine(f"plic.{source}")
        self._lines[source] = wire
        wire.connect(lambda level: self.set_level(source, level))
        return wire

    def set_level(self, source: int, level: bool) -> None:
        bit = 1 << source
        self.levels = (self.levels | bit) if level else (self.levels & ~bit)
        self._update()

    def best(self) -> int:
        """The source a claim would return now (0 if none)."""
        candidates = self.pending & self.enable & SOURCE_MASK
        best_id, best_priority = 0, self.threshold
        while candidates:
            low = candidates & -candidates
            source = low.bit_length() - 1
            if self.priority[source] > best_priority:
                best_id, best_priority = source, self.priority[source]
            candidates ^= low
        return best_id

    def claim(self) -> int:
        source = self.best()
        if source:
            self.claimed |= 1 << source
            self._update()
        return source

    def complete(self, source: int) -> None:
        if 0 < source < PLIC_NUM_SOURCES and self.enable >> source & 1:
            self.claimed &= ~(1 << source)
            self._update()

    def _update(self) -> None:
        self._meip.set(self.best() != 0)

    def read(self, offset: int, size: int) -> int:
        word = self._read32(offset & ~3)
        return (word >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        aligned = offset & ~3
        if size != 4 or offset != aligned:
            # Narrow writes merge into the register; claim/complete never reads (a read claims).
            shift = 8 * (offset - aligned)
            mask = ((1 << (8 * size)) - 1) << shift
            current = 0 if aligned == PLIC_CLAIM else self._read32(aligned)
            value = (current & ~mask) | ((value << shift) & mask)
        self._write32(aligned, value & 0xFFFF_FFFF)

    def _read32(self, offset: int) -> int:
        if PLIC_PRIORITY <= offset < PLIC_PRIORITY + 4 * PLIC_NUM_SOURCES:
            return self.priority[(offset - PLIC_PRIORITY) // 4]
        if PLIC_PENDING <= offset < PLIC_PENDING + 4 * WORDS:
            return (self.pending >> (8 * (offset - PLIC_PENDING))) & 0xFFFF_FFFF
        if PLIC_ENABLE <= offset < PLIC_ENABLE + 4 * WORDS:
            return (self.enable >> (8 * (offset - PLIC_ENABLE))) & 0xFFFF_FFFF
        if offset == PLIC_THRESHOLD:
            return self.threshold
        if offset == PLIC_CLAIM:
            return self.claim()
        return 0

    def _write32(self, offset: int, value: int) -> None:
        if PLIC_PRIORITY <= offset < PLIC_PRIORITY + 4 * PLIC_NUM_SOURCES:
            source = (offset - PLIC_PRIORITY) // 4
            if source:
                self.priority[source] = value & PRIORITY_MASK
        elif PLIC_ENABLE <= offset < PLIC_ENABLE + 4 * WORDS:
            shift = 8 * (offset - PLIC_ENABLE)
            self.enable = (self.enable & ~(0xFFFF_FFFF << shift)) | (value << shift)
            self.enable &= SOURCE_MASK
        elif offset == PLIC_THRESHOLD:
            self.threshold = value & PRIORITY_MASK
        elif offset == PLIC_CLAIM:
            self.complete(value)
            return
        else:
            return
        self._update()
