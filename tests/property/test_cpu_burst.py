"""Copy loops between a data port and RAM: translated code moves all but their last pass
in one burst of the port (bus.Route's read_burst/write_burst) and must leave exactly the
state the interpreter leaves, access by access.

The port is a FIFO that raises the external interrupt on its `limit`-th read and on its
`limit`-th write, the way a NIC's remote DMA raises "complete" on its last word: a burst
stops short of that access, which then runs on its own, so the interrupt is taken after
the same instruction as in the interpreter. Loops vary in access size, the position of
the pointer increment, the RAM offset (near RAM's end, so some bursts must be refused),
their length, and the slices they run in.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emu.core.bus import Bus, Route
from emu.cpu.cpu import Cpu
from emu.cpu.csr import MIP_MEIP, MSTATUS_MIE
from tests.rvasm import Asm, boot

RAM = 0x8000_0000
RAM_SIZE = 0x10000
HANDLER = RAM + 0x2000
PORT = 0x1200_0000
LOAD = {1: "lbu", 2: "lhu", 4: "lw"}
STORE = {1: "sb", 2: "sh", 4: "sw"}


class FifoPort:
    """A data port at offset 0 (any other offset reads the counts): reads give item i of
    a fixed sequence, writes are recorded; the `limit`-th of either raises MEIP."""

    def __init__(self, cpu_ref: list[Cpu], limit: int) -> None:
        self.cpu_ref = cpu_ref
        self.limit = limit
        self.reads = 0
        self.written: list[tuple[int, int]] = []
        self.bursts = 0

    @staticmethod
    def item(index: int, size: int) -> int:
        return ((index + 1) * 0x9E3779B1 >> 3) & ((1 << (8 * size)) - 1)

    def _interrupt(self) -> None:
        self.cpu_ref[0].set_irq(MIP_MEIP, True)

    def read(self, offset: int, size: int) -> int:
        if offset:
            return self.reads + len(self.written)
        value = self.item(self.reads, size)
        self.reads += 1
        if self.reads == self.limit:
            self._interrupt()
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if offset:
            return
        self.written.append((size, value))
        if len(self.written) == self.limit:
            self._interrupt()

    def _plain(self, done: int, count: int) -> int:
        """How many of `count` accesses after `done` ones raise nothing."""
        return count if done >= self.limit else min(count, self.limit - done - 1)

    def read_burst(self, offset: int, size: int, count: int) -> bytes:
        take = self._plain(self.reads, count)
        data = b"".join(self.item(self.reads + i, size).to_bytes(size, "little")
                        for i in range(take))
        self.reads += take
        self.bursts += take > 0
        return data

    def write_burst(self, offset: int, size: int, data: bytes) -> int:
        take = self._plain(len(self.written), len(data) // size)
        self.written += [(size, int.from_bytes(data[i * size:(i + 1) * size], "little"))
                         for i in range(take)]
        self.bursts += take > 0
        return take

    def route(self, offset: int, size: int) -> Route | None:
        if offset == 0:
            return Route(0, 1, 0, self.read, self.write, self.read_burst, self.write_burst)
        return Route(offset, offset + 1, 0, self.read, self.write)


def handler() -> bytes:
    """The interrupt: mask it (mie.MEIE) and return; the loop goes on."""
    asm = Asm(HANDLER)
    asm.li(31, MIP_MEIP)
    asm.csrrc("zero", "mie", 31)
    asm.mret()
    return asm.code()


def copy_loop(reads: bool, size: int, step_first: bool, start: int, passes: int) -> bytes:
    """x6 = the port, x7 = the RAM pointer, x8 = its end: one pass per item."""
    asm = Asm()
    asm.li(6, PORT)
    asm.li(7, start)
    asm.li(8, (start + passes * size) & 0xFFFFFFFF)
    asm.label("copy")
    if reads:
        asm.load(LOAD[size], 5, 6, 0)
        if step_first:
            asm.addi(7, 7, size)
            asm.store(STORE[size], 5, 7, -size)
        else:
            asm.store(STORE[size], 5, 7, 0)
            asm.addi(7, 7, size)
    else:
        if step_first:
            asm.addi(7, 7, size)
            asm.load(LOAD[size], 5, 7, -size)
        else:
            asm.load(LOAD[size], 5, 7, 0)
            asm.addi(7, 7, size)
        asm.store(STORE[size], 5, 6, 0)
    asm.bne(7, 8, "copy")
    asm.wfi()
    return asm.code()


def make_cpu(code: bytes, translate: bool, limit: int, ram_fill: bytes) -> tuple[Cpu, FifoPort]:
    bus = Bus()
    ref: list[Cpu] = []
    port = FifoPort(ref, limit)
    bus.map(PORT, 0x10, port, "fifo")
    cpu = boot(code, translate=translate, bus=bus, ram_size=RAM_SIZE)
    ref.append(cpu)
    cpu.ram[0x4000:0x4000 + len(ram_fill)] = ram_fill
    cpu.ram[RAM_SIZE - len(ram_fill):] = ram_fill
    code = handler()
    cpu.ram[HANDLER - RAM:HANDLER - RAM + len(code)] = code
    cpu.mtvec = HANDLER
    cpu.mstatus = MSTATUS_MIE
    cpu.mie = MIP_MEIP
    return cpu, port


def state(cpu: Cpu, port: FifoPort) -> tuple:
    return (list(cpu.x), cpu.pc, cpu.instret, cpu.mip, cpu.mie, cpu.mepc, cpu.mcause,
            bytes(cpu.ram), port.reads, port.written)


@settings(max_examples=80)
@given(
    reads=st.booleans(),
    size=st.sampled_from([1, 2, 4]),
    step_first=st.booleans(),
    # near the middle of RAM (aligned or not), or running up to and past RAM's end
    start=st.sampled_from([0x4000, 0x4001, 0x4002, RAM_SIZE - 64, RAM_SIZE - 63, RAM_SIZE - 8]),
    passes=st.integers(1, 300),
    limit=st.integers(1, 320),
    slices=st.lists(st.integers(1, 400), min_size=1, max_size=5),
)
def test_copy_loop_bursts_match_the_interpreter(reads: bool, size: int, step_first: bool,
                                                start: int, passes: int, limit: int,
                                                slices: list[int]) -> None:
    code = copy_loop(reads, size, step_first, RAM + start, passes)
    fill = bytes(i * 37 & 0xFF for i in range(512))
    ref, ref_port = make_cpu(code, False, limit, fill)
    fast, fast_port = make_cpu(code, True, limit, fill)
    for budget in [*slices, 100_000]:
        retired = ref.run(budget)
        assert fast.run(budget) == retired
        assert state(fast, fast_port) == state(ref, ref_port)
    assert ref.waiting or ref.mcause  # finished, or faulted past RAM's end
    assert ref_port.bursts == 0


def test_a_long_copy_loop_uses_bursts() -> None:
    """The burst path itself runs (and the property above compares it): a 200-word read
    and a 200-word write each go through the port in one burst plus a last pass."""
    for reads in (True, False):
        code = copy_loop(reads, 2, True, RAM + 0x4000, 200)
        ref, ref_port = make_cpu(code, False, 200, bytes(400))
        fast, fast_port = make_cpu(code, True, 200, bytes(400))
        ref.run(100_000)
        fast.run(100_000)
        assert fast_port.bursts == 1
        assert state(fast, fast_port) == state(ref, ref_port)
