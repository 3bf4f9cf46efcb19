"""Cpu — one RV32IM + Zicsr hart in machine mode; QEMU's target/riscv/cpu.c plus the cpu_exec loop.

`run(budget)` is the dispatch loop: between translated regions it takes pending
interrupts and honours stop requests and wfi. Code comes from the block translator
(emu.cpu.translate) keyed by pc; the CSR/trap/wfi instructions and slice tails go
through the reference interpreter (emu.cpu.interp). Loads, stores and fetches inside
RAM touch the bytearray directly; everything else goes through the Bus, whose BusError
becomes an access fault. Translated code remembers, per load/store instruction, the
device handler its last access was routed to (`load_io`/`store_io` fill that cache;
QEMU's softmmu TLB), and forgets every such route when the bus map changes. Code is
translated when it is hot, and, while the machine has nothing else to do, ahead of need
(`warm_up`).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.core.bus import Bus, BusError, Route
from emu.cpu import csr, interp
from emu.cpu.csr import MIP_MEIP, MIP_MSIP, MIP_MTIP, MSTATUS_MIE, MSTATUS_MPIE
from emu.cpu.decode import Insn, decode
from emu.cpu.translate import RESERVE, Translator
from emu.cpu.trap import (
    INSN_ACCESS_FAULT,
    INSN_MISALIGNED,
    INTERRUPT,
    IRQ_M_EXT,
    IRQ_M_SOFT,
    IRQ_M_TIMER,
    LOAD_ACCESS_FAULT,
    STORE_ACCESS_FAULT,
    GuestFault,
    Trap,
)

__all__ = ["Cpu", "GuestFault"]

M32 = 0xFFFFFFFF
# Highest priority first (priv spec 3.1.9: MEI > MSI > MTI).
_IRQ_ORDER = ((MIP_MEIP, IRQ_M_EXT), (MIP_MSIP, IRQ_M_SOFT), (MIP_MTIP, IRQ_M_TIMER))
# Bounds so a guest wandering through all of RAM cannot make the caches grow without end.
_MAX_CACHED_REGIONS = 2048
_MAX_HEAT_ENTRIES = 1 << 16
_MAX_DECODED = 1 << 16
# An empty route: no address satisfies lo <= addr < hi.
_NO_ROUTE = (1, 0, 0, None, None)


class Cpu:
    """The hart. `x` (registers, x[0] always 0) and `ram` are bound into translated code:
    change them in place, never rebind them. Code written into RAM from outside the
    guest after it has run needs `flush_translations()`, as the guest needs fence.i."""

    def __init__(
        self,
        bus: Bus,
        ram: bytearray,
        ram_base: int,
        read_mtime: Callable[[], int],
        *,
        translate: bool = True,
        translate_after: int = 16,
    ) -> None:
        """`translate=False` runs everything through the reference interpreter. Code is
        translated once its entry pc has been dispatched `translate_after` times. Code
        that runs a few times only (start-up, one-off paths) is cheaper to interpret than
        to compile; a threshold much higher than this one, though, leaves a
        request/response guest compiling (milliseconds each time) for its first hundreds
        of frames, a chain of regions each becoming hot once the previous one is
        compiled."""
        self.bus = bus
        self.ram = ram
        self.ram_base = ram_base
        self.read_mtime = read_mtime
        self.x = [0] * 32
        self.pc = ram_base
        self.instret = 0
        self.waiting = False
        self.mstatus = 0
        self.mie = 0
        self.mip = 0
        self.mtvec = 0
        self.mepc = 0
        self.mcause = 0
        self.mtval = 0
        self.mscratch = 0
        self.cycle_offset = 0
        self.instret_offset = 0
        # True when the dispatch loop must look at something other than the next region:
        # a stop request, wfi, or an enabled pending interrupt.
        self.attention = False
        self._stop = False
        self._decoded: dict[int, Insn] = {}
        # Translated regions by entry; by every other start of one of their blocks, where
        # interpreted code that steps or jumps there from translated code goes on in them.
        self._regions: dict[int, Callable[[int, int], int]] = {}
        self._inside: dict[int, Callable[[int, int], int]] = {}
        self._heat: dict[int, int] = {}
        # For warm_up: pcs inside translated code, pcs run but not translated yet (lowest
        # last), those of them a region covers, and pcs translated code reaches but leaves
        # to others (an ordered set).
        self._covered: set[int] = set()
        self._cold: list[int] = []
        self._recurring: set[int] = set()
        self._warming = False
        self._untranslatable: set[int] = set()
        self._ahead: dict[int, None] = {}
        self._translate_after = translate_after
        self._translator = Translator(self, self._is_hot) if translate else None
        self._routes: list[list] = []
        bus.on_change(self._forget_routes)

    # --- the public interface the machine uses -------------------------------------

    def run(self, budget: int) -> int:
        """Execute up to `budget` instructions; return how many retired."""
        self._stop = False
        if self.waiting:
            if not self.mip & self.mie:
                return 0
            self.waiting = False
        self.update_attention()
        start = self.instret
        limit = start + budget
        regions = self._regions
        # Once a region declines for lack of budget, the slice's last few instructions
        # are interpreted without heating their pcs: a tail that ends mid-loop would
        # otherwise get every pc of the loop translated as an entry of its own. So are
        # those after a region that stops at one of its own blocks this close to the
        # slice's end: the budget stopped it there.
        tail = False
        # Inside translated code, only a pc reached by a jump from a region (its exit), an
        # interrupt, code no region holds (a CSR instruction) or a jump to a pc where no
        # region has a block is heated. Interpreting translated code (where the last
        # slice stopped, or one instruction at a region's exit), the next block start a
        # region holds goes on in that region, whether stepped or jumped to; other pcs
        # stepped to are interpreted unheated. Heated, the pcs where slices happen to
        # end, and those after them, would each become an entry of their own, one every
        # few hundred slices, each compiled (milliseconds) for nothing.
        covered = self._covered
        inside = self._inside
        within = self.pc in covered
        while self.instret < limit:
            if self.attention:
                if self._stop or self.waiting:
                    break
                self._take_interrupt()
                within = False
            try:
                here = self.pc
                region = regions.get(here)
                if region is not None:
                    within = False
                    if region(limit, here):
                        continue
                    tail = True
                elif not tail:
                    if within:
                        region = inside.get(here)
                    elif limit - self.instret < RESERVE and here in inside:
                        tail = True
                    else:
                        region = self._region_at(here)
                    if region is not None:
                        within = False
                        if region(limit, here):
                            continue
                        tail = True
                interp.step(self)
                # A jump to a pc no region starts a block at leaves covered code the way
                # a region's exit does (a loop head the region cut off): heated.
                within = here in covered and (self.pc == here + 4 or self.pc in inside)
            except Trap as trap:
                within = False
                self._trap(trap.cause, trap.tval, trap.epc)
                # A trap retires nothing; it still uses up budget, or a handler that
                # itself faults would spin here forever.
                limit -= 1
        return self.instret - start

    def request_stop(self) -> None:
        self._stop = True
        self.attention = True

    def set_irq(self, mask: int, level: bool) -> None:
        if level:
            self.mip |= mask
        else:
            self.mip &= ~mask
        if self.waiting and self.mip & self.mie:
            self.waiting = False
        self.update_attention()

    def csr_read(self, num: int) -> int | None:
        """CSR `num` as the guest would read it, or None if this hart has no such CSR
        (the monitor's `info registers`)."""
        return csr.read(self, num)

    def flush_translations(self) -> None:
        """Forget decoded and translated code (fence.i, or RAM rewritten from outside)."""
        self._decoded.clear()
        self._regions.clear()
        self._inside.clear()
        self._heat.clear()
        self._covered.clear()
        self._cold.clear()
        self._recurring.clear()
        self._ahead.clear()
        self._untranslatable.clear()
        self._routes = []

    # --- used by the interpreter, the translator and generated code ------------------

    def update_attention(self) -> None:
        self.attention = self._stop or self.waiting or bool(
            self.mstatus & MSTATUS_MIE and self.mip & self.mie)

    def fetch(self, pc: int) -> Insn:
        insn = self._decoded.get(pc)
        if insn is None:
            if pc & 3:
                raise Trap(INSN_MISALIGNED, pc, pc)
            off = pc - self.ram_base
            if not 0 <= off <= len(self.ram) - 4:
                raise Trap(INSN_ACCESS_FAULT, pc, pc)
            insn = decode(int.from_bytes(self.ram[off:off + 4], "little"))
            if len(self._decoded) >= _MAX_DECODED:
                self._decoded.clear()
            self._decoded[pc] = insn
        return insn

    def load(self, addr: int, size: int, pc: int) -> int:
        off = addr - self.ram_base
        if 0 <= off <= len(self.ram) - size:
            return int.from_bytes(self.ram[off:off + size], "little")
        try:
            return self.bus.read(addr, size)
        except BusError:
            raise Trap(LOAD_ACCESS_FAULT, addr, pc) from None

    def store(self, addr: int, size: int, value: int, pc: int) -> None:
        off = addr - self.ram_base
        if 0 <= off <= len(self.ram) - size:
            self.ram[off:off + size] = value.to_bytes(size, "little")
            return
        try:
            self.bus.write(addr, size, value)
        except BusError:
            raise Trap(STORE_ACCESS_FAULT, addr, pc) from None

    def route_cache(self) -> list:
        """A new, empty per-instruction route: [lo, hi, base, handler, burst]; translated
        code calls `handler(addr - base, size[, value])` directly while lo <= addr < hi,
        and a copy loop calls `burst` (the route's read_burst or write_burst, or None)."""
        cache = list(_NO_ROUTE)
        self._routes.append(cache)
        return cache

    def load_io(self, addr: int, size: int, pc: int, cache: list) -> int:
        """Translated code's load outside its RAM fast path (a device, or RAM reached
        unaligned): performs it and, for a device, routes `cache` to its handler."""
        off = addr - self.ram_base
        if 0 <= off <= len(self.ram) - size:
            return int.from_bytes(self.ram[off:off + size], "little")
        route = self.bus.route(addr, size)
        if route is None:
            raise Trap(LOAD_ACCESS_FAULT, addr, pc)
        _fill(cache, route, False)
        return route.read(addr - route.base, size)

    def store_io(self, addr: int, size: int, value: int, pc: int, cache: list) -> None:
        off = addr - self.ram_base
        if 0 <= off <= len(self.ram) - size:
            self.ram[off:off + size] = value.to_bytes(size, "little")
            return
        route = self.bus.route(addr, size)
        if route is None:
            raise Trap(STORE_ACCESS_FAULT, addr, pc)
        _fill(cache, route, True)
        route.write(addr - route.base, size, value)

    def prime_route(self, addr: int, size: int, write: bool, cache: list) -> None:
        """Fills `cache` for an access translated code is about to make, without making
        it (a copy loop's first burst needs the route before its first pass)."""
        route = self.bus.route(addr, size)
        if route is not None:
            _fill(cache, route, write)

    def _forget_routes(self) -> None:
        for cache in self._routes:
            cache[:] = _NO_ROUTE

    def mret(self) -> int:
        mpie = self.mstatus & MSTATUS_MPIE
        self.mstatus = (MSTATUS_MIE if mpie else 0) | MSTATUS_MPIE
        self.update_attention()
        return self.mepc

    def wait_for_interrupt(self) -> None:
        if not self.mip & self.mie:
            self.waiting = True
            self.attention = True

    # --- traps -------------------------------------------------------------------------

    def _take_interrupt(self) -> None:
        if self.mstatus & MSTATUS_MIE:
            pending = self.mip & self.mie
            for bit, irq in _IRQ_ORDER:
                if pending & bit:
                    self._trap(INTERRUPT | irq, 0, self.pc)
                    return
        self.update_attention()

    def _trap(self, cause: int, tval: int, epc: int) -> None:
        base = self.mtvec & ~3
        if base == 0:
            self.pc = epc
            raise GuestFault(cause, epc, tval)
        self.mepc = epc
        self.mcause = cause
        self.mtval = tval
        self.mstatus = MSTATUS_MPIE if self.mstatus & MSTATUS_MIE else 0
        vectored = self.mtvec & 1 and cause & INTERRUPT
        self.pc = (base + 4 * (cause & 0x1F)) & M32 if vectored else base
        self.update_attention()

    def _is_hot(self, pc: int) -> bool:
        """Whether code at `pc` has run often enough for a region to take in a call to it:
        translated already, or dispatched half as often as translation needs (or the
        region is being translated ahead, by `warm_up`)."""
        return (self._warming or pc in self._regions
                or 2 * self._heat.get(pc, 0) >= self._translate_after)

    def _region_at(self, pc: int) -> Callable[[int, int], int] | None:
        """The region at `pc` once it is hot enough to translate, else None."""
        if self._translator is None or pc in self._untranslatable:
            return None
        heat = self._heat.get(pc, 0)
        if heat < self._translate_after:
            if len(self._heat) >= _MAX_HEAT_ENTRIES:
                self._heat.clear()
            self._heat[pc] = heat + 1
            return None
        return self._translate(pc, self._translator)

    def _translate(self, pc: int, translator: Translator) -> Callable[[int, int], int] | None:
        """The region at `pc`, now translated; None where no region can start (a CSR
        instruction, wfi, ...: the interpreter runs it, and the pc is never tried again).
        Such a pc gets no region that would decline to run, which the dispatch loop takes
        for a slice's end and would stop translating for the rest of the slice."""
        if len(self._regions) >= _MAX_CACHED_REGIONS:
            self._regions.clear()
            self._inside.clear()
            self._routes = []
            self._covered.clear()
            self._ahead.clear()
        translation = translator.translate(pc)
        if translation is None:
            self._heat.pop(pc, None)
            self._untranslatable.add(pc)
            return None
        # The pcs inside it grew hot while it was interpreted; they are reached through
        # it now, and become entries of their own only by being dispatched again.
        heat_map = self._heat
        covered = self._covered
        for start, end in translation.spans:
            for inner in range(start, end, 4):
                heat_map.pop(inner, None)
                covered.add(inner)
        region = translation.region
        self._regions[pc] = region
        inside = self._inside
        for start, _end in translation.spans:
            inside.setdefault(start, region)
        regions = self._regions
        ahead = self._ahead
        for target in translation.exits:
            if target not in covered and target not in regions:
                ahead[target] = None
        return region

    def warm_up(self) -> bool:
        """Translates one more region, ahead of need: of the code the guest has run
        (lowest pc first, so regions start where functions do), then of the code that
        translated code reaches directly (callees, return points, branch targets). A
        machine calls it while its guest idles, so the code behind a rare event (the
        first ping after boot) runs translated the first time. False once nothing is
        left, or the warm regions reach their bound (half the region cache)."""
        translator = self._translator
        if translator is None:
            return False
        while len(self._regions) < _MAX_CACHED_REGIONS // 2:
            if not self._cold:
                self._take_heat()
            if self._cold:
                pc = self._cold.pop()
            elif self._ahead:
                pc = next(iter(self._ahead))
                del self._ahead[pc]
            else:
                return False
            if (pc in self._regions or pc in self._untranslatable
                    or (pc in self._covered and pc not in self._recurring)):
                continue
            # Translated ahead, a region takes its callees in as a hot one would: it is
            # the region the code runs in from then on.
            self._warming = True
            try:
                self._translate(pc, translator)
            finally:
                self._warming = False
            return True
        return False

    def _take_heat(self) -> None:
        """The code run since the last idle spell, for warm_up (`_cold`). A pc a region
        covers but leaves to (a callee's loop head past what the region took in) is taken
        once it was reached twice, as code that recurs (`_recurring`); until then it
        keeps its heat. Cleared at each idle spell, the heat of a pc reached once or
        twice per request would never grow hot; taken at once, every such pc, some
        reached only at boot, would each become a region (a thousand compiles for pingd,
        the region cache filled and cleared, pings delayed)."""
        covered = self._covered
        taken = [pc for pc, heat in self._heat.items() if pc not in covered or heat >= 2]
        for pc in taken:
            del self._heat[pc]
        self._cold = sorted(taken, reverse=True)
        self._recurring = {pc for pc in taken if pc in covered}


def _fill(cache: list, route: Route, write: bool) -> None:
    """Point a per-instruction route cache at `route`'s handler (and burst) for loads or
    for stores."""
    if write:
        cache[:] = route.lo, route.hi, route.base, route.write, route.write_burst
    else:
        cache[:] = route.lo, route.hi, route.base, route.read, route.read_burst
