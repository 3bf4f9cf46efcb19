"""Region translator: guest code to Python functions — QEMU's TCG and TB chaining, in miniature.

A region is a set of basic blocks discovered breadth-first from an entry pc by following
direct branches and jumps nearby, and calls (with their return points) only into code
that is hot already: a cold callee would cost more to compile than it saves in
dispatching, while a hot one called from a loop keeps the loop inside the region. It
becomes one Python function: registers cached in locals (written back on exit), each
block an `if pc == START:` arm of a `while` loop, the arms grouped a few at a time under
a balanced tree of `pc <` tests, so loops inside the region run without returning to the
dispatcher and reach any arm after a handful of tests; a block that branches to itself
spins in its own inner loop, a `for` over its passes when the branch is `bne` on a
pointer one `addi` moves towards an end nothing else writes (the count is then known
before it starts, and its accesses through a register one `addi` moves are tested
against RAM once for all its passes). Forward edges fall through to later arms of the
same leaf; backward edges go round the loop; a branch or jump to a block of at most four
arithmetic instructions and a branch copies that block into its own arm, and a block
that its copied-in blocks lead back to spins in a `while` of its own, so the loop of a
branchy CRC does not dispatch on every pass. Loop nests run nested: an inner loop (one
that spins, either way) whose one way out is a copied-in block leading back to the block
that entered it runs inside that block's `while`, which spins for it (a bitwise CRC's
bit loop inside its byte loop). In a counted loop's `for`, a register one `addi` moves
and nothing else reads but accesses tested for all the passes stays at its start value
(those accesses add the passes' steps to it) and moves once, after them, by all of them;
on the way to a device it is made exact first. A spinning block whose copied-in blocks
all end in the same `bne` back to it, on a pointer it moves itself, is a counted loop
too (a CRC's bit loop with its conditional xor): its passes run as a `for`, each way
round adding its own count. Each block checks the instruction budget before it runs (it
runs only if all of it fits, with the longest block it copies in), so a region never
overshoots its budget and leaves at most one block's worth for the interpreter, however
large the region is. An indirect jump (jalr: a return, mostly) whose target starts a
block of the region goes round the loop too, so a loop that calls a small function stays
in the region (QEMU's TB chaining, lookup_and_goto_ptr).

Arithmetic: each instruction is one expression from `emu.cpu.alu_expr`, given bit
bounds on its operands known within the block; an instruction whose result one later
instruction reads, once, and overwrites, with only arithmetic between that touches
neither the result nor its sources, hands its expression to that one instead of writing
a local (`_forwarded`). A value that only a load's address needs (a table lookup's
`add t, t, table; lw t, 0(t)`) becomes the address expression itself: with no 32-bit
mask, a sum's constant term in the access's offset, and in a counted loop a register
term the loop does not write as its offset from RAM's base, worked out before the loop
(`_hoist`). Where the load writes another register (gcc's `add a5, a2, a5;
lw a4, 0(a5)`) and a counted loop's passes use the sum's register only as that address
(`_address_only`), the register is written from the address on the way to a device or a
fault and after the passes, not in each pass. A branch's test is `alu_expr.condition`,
from the same bounds.

Memory: an aligned access inside RAM is one test and one subscript of the RAM's
bytearray or of a word/halfword view of it; where two or more accesses in a stretch of a
block share a base register (a structure's fields, an unrolled copy's loads and its
stores), one test per base covers them all and each is a subscript alone, the usual code
standing by for when a test fails. Any other access stays in the region too
(QEMU's softmmu TLB and MemoryRegion dispatch): each load/store instruction has its own
route cache, filled by `Cpu.load_io`/`Cpu.store_io` from `Bus.route`, so a device access
whose address is still in the cached range calls the device's `read`/`write` directly,
one Python call; an unaligned access inside RAM (rare: packed structures) goes through
those two as well, which keeps the code compiled per access, and so the time spent
compiling, small. A guest's loop over a device data port thus runs as a loop here, and
a copy loop between a data port and RAM moves all but its last pass in one burst of the
port (`_Burst`), the way KVM and QEMU serve string I/O (`rep insw`) in one exit.

Exactness: a faulting load/store or misaligned jalr raises Trap with its pc; the
region writes its registers back and sets instret to the instructions that retired
before it. Before any access outside the RAM fast path, instret and pc are made exact
so devices see the right virtual time; after it, the region ends only if the Cpu needs
attention (the device raised an enabled interrupt, or a stop was asked for, e.g. a
timer moved earlier), which is where the interpreter would take it too. CSR,
ecall/ebreak, mret, wfi, fence.i and illegal encodings end a block and are run by the
interpreter; self-modifying code needs fence.i, which forgets every translation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from string import hexdigits
from typing import TYPE_CHECKING, NamedTuple

from emu.cpu.alu_expr import ZERO, Operand, condition, expression, reads
from emu.cpu.decode import BRANCH_OPS, LOAD_OPS, STORE_OPS, SYSTEM_OPS, Insn
from emu.cpu.interp import div, rem
from emu.cpu.trap import INSN_MISALIGNED, Trap

if TYPE_CHECKING:
    from emu.cpu.cpu import Cpu

M32 = 0xFFFFFFFF
# A region's Python is compiled in about 40 us per instruction: bigger regions save few
# dispatches and cost a guest that has just started milliseconds per region.
MAX_REGION_INSNS = 128
MAX_RUN_INSNS = 64
MAX_CALLEE_INSNS = 48
# A counted loop (_Emitter._counted) with fewer passes to go runs as an uncounted one: a
# CRC's eight-pass bit loop is cheaper counted (in bytecodes and in host instructions);
# counting from two passes on made the flood guest's driver code dearer.
MIN_COUNTED_PASSES = 4
# Arms tested in a row at a leaf of a region's dispatch tree (_Emitter._dispatch).
DISPATCH_LEAF = 4
# A block this short (its branch included) is copied into the arms that branch or jump to
# it (_Emitter._transfer): four instructions and a branch take in the conditional step of
# a bitwise CRC as gcc -Os lays it out; six would also copy blocks that break the spinning
# of CRC-16's bit loop at -O2.
MAX_INLINED_INSNS = 5
# More than any block asks of the budget before it runs (its own instructions, those of
# the block it copies in, and of a nested loop's way out): a region that stops with
# fewer left before its limit may have stopped for want of them.
RESERVE = 4 * (MAX_RUN_INSNS + MAX_INLINED_INSNS)
# A stretch of a block emitted twice (_Emitter._body) spans at most this many instructions.
MAX_STRETCH = 16
WINDOW_BEHIND = 2048
WINDOW_AHEAD = 4096

SIGN_EXTEND_BYTE = tuple((b - 256) & M32 if b & 0x80 else b for b in range(256))

# Bound as default arguments so generated code reaches them as fast locals.
_HELPERS = ("LEADERS", "C", "X", "R", "W", "H", "SB", "LD", "ST",
            "PRIME", "Trap", "DIV", "REM")
_LOAD_SIZE = {"lb": 1, "lbu": 1, "lh": 2, "lhu": 2, "lw": 4}
_STORE_SIZE = {"sb": 1, "sh": 2, "sw": 4}
_LOAD_FAST = {
    "lb": "SB[R[o]]", "lbu": "R[o]", "lw": "W[o >> 2]", "lhu": "H[o >> 1]",
    "lh": "((H[o >> 1] ^ 0x8000) - 0x8000) & 0xFFFFFFFF",
}
_STORE_FAST = {"sb": "R[o] = {v}", "sh": "H[o >> 1] = {v}", "sw": "W[o >> 2] = {v}"}
# Immediates are 12-bit: an address a register plus one can reach wraps past 2^32 only
# within this distance of either end of the address space.
_IMM_REACH = 2048


class Translation(NamedTuple):
    # region(limit, pc) -> instructions retired, entered at any of its blocks' starts
    region: Callable[[int, int], int]
    spans: list[tuple[int, int]]  # the [start, end) pc ranges of its blocks
    exits: list[int]  # pcs its code reaches directly but leaves to other regions


class _Block:
    __slots__ = ("end", "insns", "start")

    def __init__(self, start: int, insns: list[Insn], end: int) -> None:
        self.start = start
        self.insns = insns  # the last one may be the branch/jump that ends the block
        self.end = end  # pc after the last instruction in `insns`


class Translator:
    def __init__(self, cpu: Cpu, is_hot: Callable[[int], bool]) -> None:
        self.cpu = cpu
        self.is_hot = is_hot
        # Word and halfword views of RAM (they pin its size, which never changes).
        view = memoryview(cpu.ram)
        self.words = view[:len(view) & ~3].cast("I")
        self.halves = view[:len(view) & ~1].cast("H")

    def translate(self, entry: int) -> Translation | None:
        """The region at `entry`, or None if no block starts there (a CSR instruction,
        wfi, ...). Its function, called with the start of any of its blocks, returns 0
        (doing nothing) when fewer than that block's size of instructions remain before
        instret reaches `limit`."""
        blocks, exits = self._discover(entry)
        if not blocks:
            return None
        emitter = _Emitter(blocks, self.cpu)
        source = emitter.source()
        namespace = {
            "LEADERS": frozenset(b.start for b in blocks),
            "C": self.cpu, "X": self.cpu.x, "R": self.cpu.ram, "W": self.words,
            "H": self.halves, "SB": SIGN_EXTEND_BYTE,
            "LD": self.cpu.load_io, "ST": self.cpu.store_io, "PRIME": self.cpu.prime_route,
            "Trap": Trap,
            "DIV": div, "REM": rem,
        }
        for k in range(emitter.routes):
            namespace[f"D{k}"] = self.cpu.route_cache()
        code = compile(source, f"<region {entry:#010x}>", "exec")
        exec(code, namespace)
        return Translation(namespace["make"](), [(b.start, b.end) for b in blocks], exits)

    def _run(self, start: int) -> tuple[list[Insn], int, list[int], list[int]]:
        """Straight-line instructions from `start`, where they end, the direct successors
        to follow, and those left to other regions (a call not taken in, and its return
        point)."""
        insns: list[Insn] = []
        pc = start
        while len(insns) < MAX_RUN_INSNS:
            try:
                insn = self.cpu.fetch(pc)
            except Trap:
                return insns, pc, [], []
            op = insn.op
            if op in SYSTEM_OPS:
                return insns, pc, [], []
            if op in BRANCH_OPS or op == "jal":
                target = (pc + insn.imm) & M32
                if target & 3:
                    return insns, pc, [], []  # the interpreter raises the misaligned-target trap
                insns.append(insn)
                if op != "jal":
                    return insns, pc + 4, [target, pc + 4], []
                if not insn.rd:
                    return insns, pc + 4, [target], []
                # A call to code already hot is followed, and so is the return point
                # after it: the call and its return stay inside the region.
                if self.is_hot(target):
                    return insns, pc + 4, [target, pc + 4], []
                return insns, pc + 4, [], [target, pc + 4]
            insns.append(insn)
            pc += 4
            if op == "jalr":
                return insns, pc, [], []
        return insns, pc, [pc], []

    def _discover(self, entry: int) -> tuple[list[_Block], list[int]]:
        """The region's blocks, and the pcs its code can go to directly that it leaves
        out (calls not taken in, their return points, code beyond its window or size)."""
        runs: dict[int, tuple[list[Insn], int]] = {}
        seen: list[int] = []
        # (start, anchor): code is followed within a window around its anchor, the
        # region's entry or, for a followed call, the callee's entry.
        # Breadth first: when the size cap cuts discovery short, what is left out is
        # the code furthest from the entry, not a hot loop's own branch target.
        work = deque([(entry, entry)])
        total = 0
        # Instructions taken in per callee: a small helper called in a loop is worth
        # taking in; a big function is compiled once, as a region of its own, rather
        # than again into every region that calls it.
        taken: dict[int, int] = {}
        while work and total < MAX_REGION_INSNS:
            start, anchor = work.popleft()
            if start in runs or not anchor - WINDOW_BEHIND <= start < anchor + WINDOW_AHEAD:
                continue
            if anchor != entry and taken.get(anchor, 0) >= MAX_CALLEE_INSNS:
                continue
            insns, end, succ, left = self._run(start)
            if not insns:
                continue
            runs[start] = (insns, end)
            total += len(insns)
            taken[anchor] = taken.get(anchor, 0) + len(insns)
            call = insns[-1].op == "jal" and insns[-1].rd != 0
            work.extend((pc, pc if call and pc != end else anchor) for pc in succ)
            seen += succ + left
        # Runs are not split where another one starts inside them: a loop entered in its
        # middle still gets a whole block for its head, which then spins as a self-loop.
        exits = [pc for pc in dict.fromkeys(seen) if pc not in runs]
        return [_Block(start, *runs[start]) for start in sorted(runs)], exits


class _Burst(NamedTuple):
    """A copy loop between a device port and RAM: its body is one zero-extending load,
    one store of the loaded value and one `addi` that moves the RAM pointer by the
    access size, and a `bne` ends it when the pointer reaches an end register."""

    reads: bool  # device to RAM (a load from the port), else RAM to device
    device: int  # index in the body of the access to the port
    cache: int  # how many loads and stores come before it in the body (its route cache)
    size: int
    pointer: int
    end: int
    value: int
    ram_offset: int  # RAM address of the first pass's access minus the pointer's value


def _burst_shape(body: list[Insn], branch: Insn) -> _Burst | None:
    """The copy loop `body` + `branch` is, or None."""
    if branch.op != "bne" or len(body) != 3:
        return None
    ops = [insn.op for insn in body]
    loads = [i for i, op in enumerate(ops) if op in ("lbu", "lhu", "lw")]
    stores = [i for i, op in enumerate(ops) if op in STORE_OPS]
    steps = [i for i, op in enumerate(ops) if op == "addi"]
    if len(loads) != 1 or len(stores) != 1 or len(steps) != 1:
        return None
    load, store, step = body[loads[0]], body[stores[0]], body[steps[0]]
    size = _LOAD_SIZE[load.op]
    pointer, value = step.rd, load.rd
    if (_STORE_SIZE[store.op] != size or step.rs1 != pointer or step.imm != size
            or loads[0] > stores[0] or store.rs2 != value or value in (0, pointer)):
        return None
    if {branch.rs1, branch.rs2} - {pointer} and pointer in (branch.rs1, branch.rs2):
        end = branch.rs2 if branch.rs1 == pointer else branch.rs1
    else:
        return None
    if load.rs1 == pointer and store.rs1 != pointer:
        reads, port, ram = False, stores[0], loads[0]
    elif store.rs1 == pointer and load.rs1 != pointer:
        reads, port, ram = True, loads[0], stores[0]
    else:
        return None
    if body[port].rs1 in (pointer, value) or end == value:
        return None
    ahead = size if steps[0] < ram else 0
    return _Burst(reads, port, 0 if port < ram else 1, size, pointer, end, value,
                  body[ram].imm + ahead)


def _forwarded(body: list[Insn], into_loads: bool, address_only: frozenset[int]) -> set[int]:
    """Indices of arithmetic instructions in `body` whose result one later instruction
    reads, once, and overwrites, with only arithmetic instructions between that neither
    read nor write that register nor write one its expression reads: the value goes into
    the later one's expression instead of a local (`x = x << 16; y = y - 1; x = x >> 16`
    becomes `y = y - 1; x = (x << 16) >> 16`, masks aside). Nothing can trap or leave
    between arithmetic instructions, so the register is never seen with the skipped
    value. With `into_loads`, the later one may also be a load that takes the register
    as its base and overwrites it (a table lookup's `add t, t, table; lw t, 0(t)`): the
    value becomes the address expression, and the load's own way to a device or a
    fault writes it to the register first. So it does for a load that writes another
    register, where the register is one of `address_only` (`_address_only`)."""
    found = set()
    # Per index: the registers its expression reads, through the values forwarded into it.
    sources: dict[int, set[int]] = {}
    for idx, insn in enumerate(body):
        if not _arithmetic(insn) or not insn.rd:
            continue
        r = insn.rd
        needs = sources.pop(idx, set()) | {s for s in (insn.rs1, insn.rs2) if s and reads(insn, s)}
        for later in range(idx + 1, len(body)):
            after = body[later]
            if (into_loads and after.op in LOAD_OPS and after.rs1 == r
                    and (after.rd == r or r in address_only)):
                found.add(idx)
                break
            if not _arithmetic(after):
                break
            if reads(after, r) or after.rd == r:
                if after.rd == r and reads(after, r) == 1:
                    found.add(idx)
                    sources[later] = needs - {r}
                break
            if after.rd in needs:
                break
    return found


def _address_only(body: list[Insn], branch: Insn) -> dict[int, tuple[int, int]]:
    """The registers that each pass of the loop `body` + `branch` uses only as an address
    it computes for one load (gcc's `add a5, a2, a5; lw a4, 0(a5)`): the pass writes one
    first, with an instruction that does not read it; the last write is arithmetic and
    the next instruction to name it is a load through it that writes another register;
    nothing names it after that load, nor does the branch. Register -> (the index of the
    arithmetic instruction, the load's offset)."""
    found = {}
    for r in range(1, 32):
        named = [i for i, insn in enumerate(body) if _names(insn, r)]
        writes = [i for i in named if body[i].rd == r]
        if not writes or _names(branch, r) or writes[0] != named[0] or _reads(body[named[0]], r):
            continue
        last = writes[-1]
        after = [i for i in named if i > last]
        if len(after) != 1 or not _arithmetic(body[last]):
            continue
        load = body[after[0]]
        if load.op in LOAD_OPS and load.rs1 == r and load.rd != r:
            found[r] = (last, load.imm)
    return found


def _reads(insn: Insn, r: int) -> bool:
    if insn.op in LOAD_OPS or insn.op == "jalr":
        return insn.rs1 == r
    if insn.op in STORE_OPS or insn.op in BRANCH_OPS:
        return r in (insn.rs1, insn.rs2)
    return insn.op != "jal" and bool(reads(insn, r))


def _names(insn: Insn, r: int) -> bool:
    # rd is 0 where an instruction writes no register (stores, branches: `decode`)
    return insn.rd == r or _reads(insn, r)


def _unwritten(insns: list[Insn]) -> frozenset[int]:
    """The registers (x0 aside) that none of `insns` writes."""
    return frozenset(range(1, 32)) - {i.rd for i in insns}


def _short(block: _Block) -> bool:
    """A block of at most MAX_INLINED_INSNS instructions, all arithmetic but the branch
    or jump that ends it and does not go back to its own start: nothing in it can trap or
    reach a device."""
    *body, last = block.insns
    return (len(block.insns) <= MAX_INLINED_INSNS and all(map(_arithmetic, body))
            and (last.op in BRANCH_OPS or last.op == "jal")
            and block.start not in _successors(block))


def _successors(block: _Block) -> list[int]:
    """Where a block that ends in a branch or jal goes next (its branch's two ways)."""
    last = block.insns[-1]
    pc = block.end - 4
    if last.op in BRANCH_OPS:
        return [(pc + last.imm) & M32, block.end]
    if last.op == "jal":
        return [(pc + last.imm) & M32]
    return []


def _arithmetic(insn: Insn) -> bool:
    return insn.op not in LOAD_OPS and insn.op not in STORE_OPS and insn.op != "fence"


class _Count(NamedTuple):
    """A loop whose branch is `bne pointer, end` (either way round), where one `addi`
    moves the pointer by `step` each pass and nothing writes `end`: the passes left
    are the distance to `end` over the step, when it divides."""

    pointer: int
    end: int
    step: int


def _count_shape(body: list[Insn], branch: Insn) -> _Count | None:
    """The counted loop `body` + `branch` is, or None."""
    if branch.op != "bne":
        return None
    steps = _steps(body)
    written = {insn.rd for insn in body if insn.op not in STORE_OPS and insn.rd}
    for pointer, end in ((branch.rs1, branch.rs2), (branch.rs2, branch.rs1)):
        if pointer in steps and end not in written:
            return _Count(pointer, end, steps[pointer][1])
    return None


def _steps(body: list[Insn]) -> dict[int, tuple[int, int]]:
    """The registers of a loop body that one `addi r, r, step` (step != 0) moves each
    pass and nothing else writes: register -> (the addi's index, its step)."""
    writes: dict[int, list[int]] = {}
    for idx, insn in enumerate(body):
        if insn.op not in STORE_OPS and insn.rd:
            writes.setdefault(insn.rd, []).append(idx)
    found = {}
    for reg, where in writes.items():
        move = body[where[0]]
        if len(where) == 1 and move.op == "addi" and move.rs1 == reg and move.imm:
            found[reg] = (where[0], move.imm)
    return found


def _walks(body: list[Insn]) -> dict[int, tuple[int, int]]:
    """The loads and stores of a loop body whose base register one `addi` moves each
    pass (`_steps`), where the step keeps them naturally aligned: index -> (the step,
    the access's offset from the base's value at the start of a pass)."""
    steps = _steps(body)
    found = {}
    for idx, insn in enumerate(body):
        if (insn.op not in LOAD_OPS and insn.op not in STORE_OPS) or insn.rs1 not in steps:
            continue
        moved_at, step = steps[insn.rs1]
        size = _access_size(insn.op)
        offset = insn.imm + (step if moved_at < idx else 0)
        if not offset % size and not step % size:
            found[idx] = (step, offset)
    return found


def _access_size(op: str) -> int:
    return _LOAD_SIZE.get(op) or _STORE_SIZE[op]


def _load_at(op: str, imm: int, base: int) -> str:
    """A load's value from RAM at offset o{base} + imm, known to be aligned and inside RAM
    (w{base} and h{base} are that offset in words and halfwords)."""
    if op == "lw":
        return f"W[{_plus(f'w{base}', imm >> 2)}]"
    if op == "lhu":
        return f"H[{_plus(f'h{base}', imm >> 1)}]"
    if op == "lh":
        return f"((H[{_plus(f'h{base}', imm >> 1)}] ^ 0x8000) - 0x8000) & 0xFFFFFFFF"
    if op == "lbu":
        return f"R[{_plus(f'o{base}', imm)}]"
    return f"SB[R[{_plus(f'o{base}', imm)}]]"


def _store_at(op: str, imm: int, value: str, base: int) -> str:
    """A store of `value` to RAM at offset o{base} + imm, known to be aligned and inside
    RAM."""
    if op == "sw":
        return f"W[{_plus(f'w{base}', imm >> 2)}] = {value}"
    if op == "sh":
        mask = " & 0xFFFF" if value != "0" else ""
        return f"H[{_plus(f'h{base}', imm >> 1)}] = {value}{mask}"
    mask = " & 0xFF" if value != "0" else ""
    return f"R[{_plus(f'o{base}', imm)}] = {value}{mask}"


def _after(start: str, count: str, step: int, k: int = 0) -> str:
    """`start` moved by `count` steps of `step`, plus k: an expression."""
    moved = (f"{start} + {count}" if step == 1 else f"{start} - {count}" if step == -1
             else f"{start} + {count} * {step}")
    return _plus(moved, k)


def _plus(name: str, k: int) -> str:
    return f"{name} + {k}" if k > 0 else f"{name} - {-k}" if k < 0 else name


def _reg(r: int) -> str:
    return f"x{r}" if r else "0"


def _literal(text: str) -> int | None:
    """The value of `text` if it is an integer literal, else None."""
    digits = text.removeprefix("-")
    if digits.isdigit() or (digits[:2] == "0x" and digits[2:]
                            and all(c in hexdigits for c in digits[2:])):
        return int(text, 0)
    return None


def _register_of(text: str) -> int | None:
    """r if `text` is register r's local, else None."""
    return int(text[1:]) if text[:1] == "x" and text[1:].isdigit() else None


def _parenthesised(text: str) -> str:
    return text if text.isidentifier() else f"({text})"


class _Emitter:
    """Writes the Python source of one region."""

    def __init__(self, blocks: list[_Block], cpu: Cpu) -> None:
        self.blocks = blocks
        self.position = {b.start: i for i, b in enumerate(blocks)}
        self.leaders = set(self.position)
        # The arms in address order, DISPATCH_LEAF at a time: the leaves of the tree of
        # `pc <` tests that dispatch (`source`).
        self.leaves = [blocks[i:i + DISPATCH_LEAF] for i in range(0, len(blocks), DISPATCH_LEAF)]
        self.leaf = {b.start: i // DISPATCH_LEAF for i, b in enumerate(blocks)}
        # Blocks short enough to be copied into the arms that branch or jump to them,
        # which saves dispatching to them (QEMU's TCG has no such thing: gcc's tail
        # duplication is the model).
        self.short = {b.start: b for b in blocks if _short(b)}
        # While emitting a block that loops back to itself through the blocks it copies
        # in (_block): its start, where a way back goes round its own `while`.
        self.spinning: int | None = None
        # Blocks that branch back to themselves (_self_loop); whether an inner loop is
        # being emitted inside a spinning block's `while` (_nest), and whether its way
        # out, back to the spinning block, is: that way sets pc back to its start.
        self.self_loops = {b.start for b in blocks
                           if b.insns[-1].op in BRANCH_OPS and b.start in _successors(b)}
        self.nested = False
        self.returning = False
        # The local holding the last `n` at which a pass of the loop being emitted may
        # start: `last` in a block's own arm, `inner` in a loop nested in another's.
        self.last = "last"
        self.base = cpu.ram_base
        self.ram_size = len(cpu.ram)
        # Python ints do not wrap: the offset from RAM's base needs a mask only when an
        # address near 0 or 2^32 can reach RAM.
        self.wraps = not _IMM_REACH <= self.base <= M32 + 1 - self.ram_size - _IMM_REACH
        self.routes = 0
        self.used: set[int] = set()
        self.written: set[int] = set()
        self.lines: list[str] = []
        self.indent = 0
        # Within the block being emitted: per register, an upper bound on its value's bit
        # length (32 if absent); the body indices whose value goes straight into a later
        # instruction's expression instead of a local (`_forwarded`); those values, per
        # register, while they are in flight.
        self.bits: dict[int, int] = {}
        self.masks: set[int] = set()  # registers known to hold 0 or all ones
        self.forward: set[int] = set()
        self.carried: dict[int, Operand] = {}
        # Inside a counted loop's `for`: the expression for `n` at the current pass's start.
        self.pass_start: str | None = None
        # Inside a counted loop's `for`: the indices of accesses tested before it started,
        # and of the `addi` left out of its passes (the pointer moves after them).
        self.walking: set[int] = set()
        self.skipped: set[int] = set()  # for the next _body; _insn reads it as `skipping`
        self.skipping: set[int] = set()
        # Inside a counted loop's `for`: the registers held at their start value, in O{r}
        # as an offset from RAM's base (register -> its step), and those whose `addi` the
        # body being emitted has passed.
        self.held: dict[int, int] = {}
        self.moved: set[int] = set()
        # Inside a counted loop's `for`: the registers its passes do not write, and those
        # of them its loads add to an address (B{r}, set before the `for`: `_hoist`).
        self.invariant: frozenset[int] = frozenset()
        self.hoisted: dict[int, None] = {}
        # Inside a counted loop's `for`: the registers its passes use only as an address
        # (`_address_only`), and those of them whose value is now A{r}, the address plus
        # the load's offset, less RAM's base (register -> that offset), not their local.
        self.address_only: frozenset[int] = frozenset()
        self.pending: dict[int, int] = {}
        # Inside a spinning counted loop's `for` (_counted_spin): the loop's start, where
        # the `bne` that ends each pass goes (it is not tested: the passes are counted).
        self.counting: int | None = None

    def source(self) -> str:
        smallest = min(len(b.insns) for b in self.blocks)
        arms = {}
        for block in self.blocks:
            self.lines = []
            self._block(block)
            arms[block.start] = self.lines
        self.lines = []
        self._dispatch(self.leaves, arms, 0)
        used = sorted(self.used | self.written)
        written = sorted(self.written)
        names = ", ".join(f"{k}={k}" for k in (*_HELPERS, *(f"D{i}" for i in range(self.routes))))
        out = ["def make():", f"    def region(limit, pc, {names}):",
               "        I0 = C.instret",
               "        L = limit - I0",
               f"        if L < {smallest}:",
               "            return 0"]
        out += [f"        x{r} = X[{r}]" for r in used]
        out += ["        n = 0", "        try:",
                "            while True:"]
        out += ["                " + line for line in self.lines]
        out += ["        except Trap as e:",
                "            C.instret = I0 + n + ((e.epc - pc) >> 2)"]
        out += [f"            X[{r}] = x{r}" for r in written]
        out += ["            raise"]
        # Anything else comes from a device behind LD/ST, which already set pc and instret.
        out += ["        except BaseException:"]
        out += [f"            X[{r}] = x{r}" for r in written]
        out += ["            raise"]
        out += [f"        X[{r}] = x{r}" for r in written]
        out += ["        C.instret = I0 + n", "        C.pc = pc", "        return n",
                "    return region"]
        return "\n".join(out) + "\n"

    def _src(self, r: int) -> str:
        if r:
            self.used.add(r)
        return _reg(r)

    def _dst(self, r: int) -> str:
        self.bits.pop(r, None)
        self.masks.discard(r)
        self.pending.pop(r, None)
        if r:
            self.written.add(r)
            return f"x{r}"
        return "_"

    def _taken(self, branch: Insn) -> str:
        """The test of `branch` being taken, with what the block knows of its operands."""
        return condition(branch.op, self._local(branch.rs1), self._local(branch.rs2))

    def _operand(self, r: int) -> Operand:
        """Register r as an operand: the value an earlier instruction forwards, if it is
        r's, else r's local."""
        value = self.carried.pop(r, None) if r else None
        if value is not None:
            return value if value.text.isidentifier() else value._replace(text=f"({value.text})")
        return self._local(r)

    def _local(self, r: int) -> Operand:
        """Register r's local (x0: zero), with the bound the block knows for it (and
        whether it holds 0 or all ones, `Operand.flag`)."""
        if not r:
            return ZERO
        name = self._src(r)
        return Operand(name, self.bits.get(r, 32), flag=name if r in self.masks else None)

    def _dispatch(self, leaves: list[list[_Block]], arms: dict[int, list[str]],
                  depth: int) -> None:
        """The arms of `leaves` under a balanced tree of `pc <` tests: reaching any arm
        (entering the region, or going round its loop) tests a few bounds and at most
        DISPATCH_LEAF pcs, not every arm before it."""
        pad = "    " * depth
        if len(leaves) == 1:
            self.lines += [pad + line for block in leaves[0] for line in arms[block.start]]
            return
        middle = len(leaves) // 2
        self.lines.append(f"{pad}if pc < {leaves[middle][0].start:#x}:")
        self._dispatch(leaves[:middle], arms, depth + 1)
        self.lines.append(f"{pad}else:")
        self._dispatch(leaves[middle:], arms, depth + 1)

    def _emit(self, line: str, depth: int) -> None:
        self.lines.append("    " * (depth + self.indent) + line)

    def _transfer(self, current: int, target: int, depth: int, inline: bool = False,
                  pending: int = 0) -> None:
        """Go on at `target` from code in the arm of block `current`: by falling through
        to a later arm of the same leaf of the dispatch tree, by going round the loop to
        any other, or out of the region.
        With `inline`, a short block at `target` is emitted right here instead (its
        instructions were counted in the budget test of the block that inlines it).
        `pending` instructions have retired but are not in `n` yet."""
        short = self.short.get(target) if inline else None
        if short is not None:
            self.indent += depth - 1
            self._contents(short, current, pending=pending)
            self.indent -= depth - 1
            return
        if pending:
            self._emit(f"n += {pending}", depth)
        if self.spinning is not None:
            if target == self.spinning:
                if self.returning:
                    self._emit(f"pc = {target:#x}", depth)
                self._emit("continue", depth)
                return
            inner = None if self.nested else self._inner_loop(target, self.spinning)
            if inner is not None:
                self._nest(inner, depth)
                return
            self._emit(f"pc = {target:#x}", depth)
            if target in self.leaders:
                self._emit("go = 1", depth)
            self._emit("break", depth)
            return
        self._emit(f"pc = {target:#x}", depth)
        if target not in self.leaders:
            self._emit("break", depth)
        elif (self.leaf[target] != self.leaf[current]
              or self.position[target] <= self.position[current]):
            self._emit("continue", depth)

    def _block(self, block: _Block) -> None:
        self._emit(f"if pc == {block.start:#x}:", 0)
        last = block.insns[-1]
        if last.op in BRANCH_OPS and (block.end - 4 + last.imm) & M32 == block.start:
            self._emit(f"if n + {len(block.insns)} > L:", 1)
            self._emit("break", 2)
            self._emit(f"last = L - {len(block.insns)}", 1)  # the last n a pass may start at
            self._self_loop(block, block.insns[:-1], last)
            self._transfer(block.start, block.end, 1)
            return
        ahead = self._ahead(block)
        if not self._spins(block) and not any(self._inner_loop(t, block.start)
                                              for t in self._targets(block)):
            self._emit(f"if n + {len(block.insns) + ahead} > L:", 1)
            self._emit("break", 2)
            self._contents(block, block.start, inline=True)
            return
        # A loop whose other blocks are all copied in, or run inside it (_nest): its way
        # back to this block goes round a `while` of its own, not through the region's
        # dispatch. `go` tells a way on to another of the region's blocks from a way out
        # of the region.
        self._emit("go = 0", 1)
        self._emit(f"last = L - {len(block.insns) + ahead}", 1)
        self._spin(block)
        self._emit("if go:", 1)
        self._emit("continue", 2)
        self._emit("break", 1)

    def _contents(self, block: _Block, current: int, inline: bool = False,
                  pending: int = 0) -> None:
        """`block`'s instructions and its way out, in the arm of block `current`, after
        `pending` instructions not yet in `n` (a block that copies this one in adds its
        own count on the way in, where it is one addition with this block's)."""
        count = len(block.insns) + pending
        body = block.insns
        last = body[-1]
        control = last.op in BRANCH_OPS or last.op in ("jal", "jalr")
        if control:
            body = body[:-1]
        self._body(body, block.start)
        if not control:
            self._emit(f"n += {count}", 1)
            self._transfer(current, block.end, 1)
            return
        pc = block.end - 4
        if self.counting is not None and (pc + last.imm) & M32 == self.counting:
            self._emit(f"n += {count}", 1)
            return
        if last.op in BRANCH_OPS:
            ways = (pc + last.imm) & M32, pc + 4
            carried = count if inline and any(t in self.short for t in ways) else 0
            if not carried:
                self._emit(f"n += {count}", 1)
            self._emit(f"if {self._taken(last)}:", 1)
            self._transfer(current, ways[0], 2, inline, carried)
            self._emit("else:", 1)
            self._transfer(current, ways[1], 2, inline, carried)
        elif last.op == "jal":
            if last.rd:
                self._emit(f"{self._dst(last.rd)} = {(pc + 4) & M32:#x}", 1)
            target = (pc + last.imm) & M32
            carried = count if inline and target in self.short else 0
            if not carried:
                self._emit(f"n += {count}", 1)
            self._transfer(current, target, 1, inline, carried)
        else:
            self._emit(f"t = ({self._src(last.rs1)} + {last.imm}) & 0xFFFFFFFE", 1)
            self._emit("if t & 2:", 1)
            self._emit(f"raise Trap({INSN_MISALIGNED}, t, {pc:#x})", 2)
            if last.rd:
                self._emit(f"{self._dst(last.rd)} = {(pc + 4) & M32:#x}", 1)
            self._emit(f"n += {count}", 1)
            self._emit("pc = t", 1)
            self._emit("if t in LEADERS:", 1)
            self._emit("continue", 2)
            self._emit("break", 1)

    def _ahead(self, block: _Block) -> int:
        """The size of the longest block `block`'s arm copies in."""
        return max((len(self.short[t].insns) for t in _successors(block) if t in self.short),
                   default=0)

    def _spins(self, block: _Block) -> bool:
        """Whether a block `block` copies in leads back to it: its arm spins (_block)."""
        return any(block.start in _successors(self.short[t])
                   for t in _successors(block) if t in self.short)

    def _targets(self, block: _Block) -> set[int]:
        """Where `block`'s arm goes on to, past the short blocks it copies in."""
        found = set()
        for way in _successors(block):
            short = self.short.get(way)
            found.update(_successors(short) if short is not None else [way])
        return found

    def _inner_loop(self, target: int, outer: int) -> _Block | None:
        """The loop at `target`, a self-loop or a spinning block, if it is an inner loop of
        the block at `outer`: its one way out is a block short enough to copy in that
        leads back to `outer` (a byte loop's `addi` and `bne` after its bit loop)."""
        if target == outer or target not in self.position:
            return None
        block = self.blocks[self.position[target]]
        after = self.short.get(self._way_out(block))
        return block if after is not None and outer in _successors(after) else None

    def _way_out(self, block: _Block) -> int | None:
        """Where the loop `block` (a self-loop or a spinning block) goes when it ends, if it
        is one place; None if it is not a loop or has several ways out."""
        if block.start in self.self_loops:
            return block.end
        if not self._spins(block):
            return None
        ways_out = self._targets(block) - {block.start}
        return ways_out.pop() if len(ways_out) == 1 else None

    def _nest(self, block: _Block, depth: int) -> None:
        """The inner loop `block` inside the spinning block's `while`, so a loop nest (a
        bitwise CRC's bit loop inside its byte loop) runs without leaving the spinning
        `while` for the region's dispatch on every outer pass. The inner loop's budget
        keeps room for the copied-in block its way out runs; when the budget runs short,
        the region ends at the inner loop's start, as in its own arm. pc is the inner
        loop's start while it runs, where traps need it."""
        after = self._way_out(block)
        assert after is not None
        size = len(block.insns) + self._ahead(block) + len(self.short[after].insns)
        self.indent += depth - 1
        self.nested = True
        self.last = "inner"
        self._emit(f"pc = {block.start:#x}", 1)
        self._emit(f"inner = L - {size}", 1)
        if block.start in self.self_loops:
            self._emit("if n > inner:", 1)
            self._emit("break", 2)
            self._self_loop(block, block.insns[:-1], block.insns[-1])
        else:
            # Its way out sets `go`; without it, the budget ran short or a device asked
            # for attention, and the region ends.
            self._spin(block)
            self._emit("if not go:", 1)
            self._emit("break", 2)
            self._emit("go = 0", 1)
        self.last = "last"
        self.returning = True
        self._transfer(block.start, after, 1, inline=True)
        self.returning = False
        self.nested = False
        self.indent -= depth - 1

    def _spin(self, block: _Block) -> None:
        """The `while` in which a block spins, its copied-in blocks leading back to it; a
        way on to another block sets `go`. Where every way back is the same `bne` of a
        counted loop (`_spin_count`), its passes run as a `for` first (`_counted_spin`),
        the `while` then standing by for when they cannot."""
        shape = self._spin_count(block)
        if shape is not None:
            self._counted_spin(block, *shape)
            self._emit("else:", 1)
            self.indent += 1
        self._emit("while True:", 1)
        self.indent += 1
        self._emit(f"if n > {self.last}:", 1)
        self._emit("break", 2)
        outer, self.spinning = self.spinning, block.start
        self._contents(block, block.start, inline=True)
        self.spinning = outer
        self.indent -= 2 if shape is not None else 1

    def _spin_count(self, block: _Block) -> tuple[_Count, int, int] | None:
        """A spinning block's count of passes, where both ways of its branch are copied-in
        blocks ending in the same `bne` back to it, of a counted loop (`_count_shape`)
        whose `addi` is in the block itself (a bitwise CRC's bit loop with its
        conditional xor); with the index of that `addi` and where the loop goes when it
        ends. None otherwise."""
        ways = _successors(block)
        if block.insns[-1].op not in BRANCH_OPS or not all(w in self.short for w in ways):
            return None
        shorts = [self.short[way] for way in ways]
        ends = {(s.insns[-1].op, s.insns[-1].rs1, s.insns[-1].rs2,
                 (s.end - 4 + s.insns[-1].imm) & M32, s.end) for s in shorts}
        if len(ends) != 1:
            return None
        op, _, _, target, after = ends.pop()
        if op != "bne" or target != block.start:
            return None
        head = block.insns[:-1]
        count = _count_shape(head + [i for s in shorts for i in s.insns[:-1]],
                             shorts[0].insns[-1])
        steps = _steps(head)
        if count is None or count.pointer not in steps:
            return None
        return count, steps[count.pointer][0], after

    def _counted_spin(self, block: _Block, count: _Count, move: int, after: int) -> None:
        """The passes of a spinning counted loop as a `for` over as many of them as both the
        loop and the budget allow (the longest way round counted for each), with no test
        of the budget or of the loop's `bne` between passes; `n` adds up each pass's
        own way round. When its passes are arithmetic only and only the `addi` reads the
        pointer, the pointer moves once, after them."""
        shorts = [self.short[way] for way in _successors(block)]
        self._passes_to_go(count, "")
        # Unlike a self-loop's arm, a spinning one is entered before its budget test.
        self._emit(f"if k and n <= {self.last}:", 1)
        self._emit(f"m = ({self.last} - n) // {len(block.insns) + self._ahead(block)} + 1", 2)
        self._emit("if k < m:", 2)
        self._emit("m = k", 3)
        self._emit("for i in range(m):", 2)
        insns = block.insns + [i for s in shorts for i in s.insns[:-1]]
        moves_once = all(map(_arithmetic, insns)) and self._holdable(insns, {}, count.pointer)
        if moves_once:
            self.skipped = {move}
        self.indent += 2
        outer, self.spinning, self.counting = self.spinning, block.start, block.start
        self._contents(block, block.start, inline=True)
        self.spinning, self.counting = outer, None
        self.indent -= 2
        self._emit("else:", 2)
        if moves_once:
            self._move(count.pointer, count.step, from_offset=False)
        self._emit("if m == k:", 3)
        self._emit(f"pc = {after:#x}", 4)
        if after in self.leaders:
            self._emit("go = 1", 4)

    def _addresses(self, body: list[Insn], branch: Insn) -> dict[int, int]:
        """The registers a counted loop's passes use only as an address (`_address_only`)
        whose value goes into the load's address: register -> the load's offset. Until
        the `for` ends, each one's value is A{r} (`pending`) wherever it is not its
        local's, and its local is made exact on the way to a device or a fault, and after
        the passes."""
        if self.wraps:
            return {}
        found = _address_only(body, branch)
        forward = _forwarded(body, True, frozenset(found))
        return {r: imm for r, (idx, imm) in found.items() if idx in forward}

    def _hoist(self, top: int, addresses: dict[int, int]) -> None:
        """Before the `for` at self.lines[top], and at its depth: B{r} for each register
        its passes added to an address without changing it, and A{r} from each register
        in `addresses` (its value before the first pass)."""
        line = self.lines[top]
        indent = line[:len(line) - len(line.lstrip())]
        self.lines[top:top] = (
            [f"{indent}B{r} = x{r} - {self.base}" for r in self.hoisted]
            + [f"{indent}A{r} = x{r} - {self.base - imm:#x}" for r, imm in addresses.items()])
        self.hoisted = {}
        self.invariant = frozenset()

    def _move(self, r: int, step: int, from_offset: bool) -> None:
        """Register r, left out of a counted loop's passes, moved by all m of them at once:
        from its own value, or (`from_offset`) from O{r}, its start as an offset from
        RAM's base."""
        start = _after(f"O{r}", "m", step, self.base) if from_offset else _after(f"x{r}", "m", step)
        self._emit(f"{self._dst(r)} = ({start}) & 0xFFFFFFFF", 3)

    def _self_loop(self, block: _Block, body: list[Insn], last: Insn) -> None:
        """A block that branches back to itself spins in its own `while`, skipping the
        region's dispatch chain; it leaves when the branch falls through, or the region
        ends when the budget runs short (pc stays at the block) or after an access
        outside RAM that needs the Cpu's attention (pc is the next instruction). A loop
        whose pass count can be worked out before it starts runs as a `for` first
        (`_counted`), the `while` then standing by for when it cannot."""
        fallthrough = block.end
        base = self.indent
        burst = _burst_shape(body, last)
        if burst is not None:
            self._burst(block, body, burst)
        count = _count_shape(body, last) if burst is None else None
        if count is not None:
            self._counted(block, body, count)
            self._emit("else:", 1)
            self.indent = base + 1
        self._emit("while True:", 1)
        self.indent += 1
        self._body(body, block.start)
        cond = self._taken(last)
        self._emit(f"n += {len(block.insns)}", 1)
        self._emit(f"if {cond}:", 1)
        self._emit(f"if n <= {self.last}:", 2)
        self._emit("continue", 3)
        self._emit("break", 2)
        self._emit(f"pc = {fallthrough:#x}", 1)
        self._emit("break", 1)
        self.indent = base
        self._emit(f"if pc != {fallthrough:#x}:", 1)
        self._emit("break", 2)

    def _counted(self, block: _Block, body: list[Insn], count: _Count) -> None:
        """The passes of a counted loop as a `for` over as many of them as both the loop
        and the budget allow, with no test of the branch or the budget between passes.
        `n` stays at the loop's start while it runs; the way out to the device path sets
        it to the current pass's start (`pass_start`), where traps and devices need it.
        Accesses through a register that one `addi` moves each pass (`_walks`) are tested
        once, for all the loop's passes, before it starts: if all of them lie inside RAM
        and aligned, each is a bare subscript; if not, the `while` runs the loop."""
        size = len(block.insns)
        walks = {} if self.wraps else _walks(body)
        self._passes_to_go(count, self._walks_in_ram(body, walks) if walks else "")
        self._emit("if k:", 1)
        self._emit(f"m = ({self.last} - n) // {size} + 1", 2)
        self._emit("if k < m:", 2)
        self._emit("m = k", 3)
        self._emit("N = n", 2)
        # Registers that one `addi` moves each pass, read by nothing else but accesses
        # tested for all passes, stay at their start value while the passes run (the
        # accesses add i steps to it); they move once, by all the passes, at the end,
        # and are made exact on the way to a device, where a trap or a stop may need them.
        steps = _steps(body)
        held = {r: step for r, (_, step) in steps.items() if self._holdable(body, walks, r)}
        # With no access in the passes, nothing reads a held register before the end.
        plain = all(map(_arithmetic, body))
        if not plain:
            for r in held:
                self._emit(f"O{r} = x{r} - {self.base}", 2)
        self._emit("for i in range(m):", 2)
        top = len(self.lines) - 1
        base = self.indent
        self.indent = base + 2
        self.pass_start = f"N + i * {size}"
        self.walking = set(walks)
        self.held = held
        self.skipped = {steps[r][0] for r in held}
        self.invariant = _unwritten(body)
        addresses = self._addresses(body, block.insns[-1])
        self.address_only = frozenset(addresses)
        self.pending = dict(addresses)
        emitted = len(self.lines)
        self._body(body, block.start)
        if len(self.lines) == emitted:
            self._emit("pass", 1)
        self.pending = {}
        self.address_only = frozenset()
        self._hoist(top, addresses)
        self.held = {}
        self.walking = set()
        self.pass_start = None
        self.indent = base
        self._emit("else:", 2)
        self._emit(f"n = N + m * {size}", 3)
        for r, step in held.items():
            self._move(r, step, from_offset=not plain)
        for r, imm in addresses.items():
            self._exact(r, imm, 3)
        self._emit("if m == k:", 3)
        self._emit(f"pc = {block.end:#x}", 4)

    def _holdable(self, body: list[Insn], walks: dict[int, tuple[int, int]], r: int) -> bool:
        """Whether register r, which one `addi` moves each pass, is read in `body` only by
        that `addi` and as the base of accesses in `walks`."""
        move = _steps(body)[r][0]
        for idx, insn in enumerate(body):
            if idx == move:
                continue
            if insn.op in LOAD_OPS or insn.op in STORE_OPS:
                if (insn.rs1 == r and idx not in walks) or (insn.op in STORE_OPS
                                                             and insn.rs2 == r):
                    return False
            elif reads(insn, r):
                return False
        return True

    def _passes_to_go(self, count: _Count, walks_in_ram: str) -> None:
        """k = the passes a counted loop has to go, or 0 where it runs as an uncounted one
        (too few passes, a step that does not divide the distance, or accesses that
        `walks_in_ram` does not find inside RAM)."""
        step = abs(count.step)
        p, e = self._src(count.pointer), self._src(count.end)
        distance = f"({e} - {p})" if count.step > 0 else f"({p} - {e})"
        self._emit(f"k = {distance} & 0xFFFFFFFF", 1)
        # A few passes are cheaper in the `while` than setting the `for` up.
        least = MIN_COUNTED_PASSES * step
        if step == 1 and not walks_in_ram:
            self._emit(f"if k < {least}:", 1)
            self._emit("k = 0", 2)
        else:
            if step & (step - 1):
                self._emit(f"if k >= {least} and not k % {step}:", 1)
                self._emit(f"k //= {step}", 2)
            elif step > 1:
                self._emit(f"if k >= {least} and not k & {step - 1}:", 1)
                self._emit(f"k >>= {step.bit_length() - 1}", 2)
            else:
                self._emit(f"if k >= {least}:", 1)
            if walks_in_ram:
                self._emit(f"if not ({walks_in_ram}):", 2)
                self._emit("k = 0", 3)
            self._emit("else:", 1)
            self._emit("k = 0", 2)

    def _walks_in_ram(self, body: list[Insn], walks: dict[int, tuple[int, int]]) -> str:
        """The test that every access in `walks` (index -> the register's step, and the
        access's offset from the register's value at the start of a pass) stays inside
        RAM, aligned, over the k passes left."""
        bases: dict[int, list[int]] = {}
        for idx in walks:
            bases.setdefault(body[idx].rs1, []).append(idx)
        tests = []
        for base, found in bases.items():
            step = walks[found[0]][0]
            low = min(walks[i][1] for i in found)
            high = max(walks[i][1] + _access_size(body[i].op) for i in found)
            widest = max(_access_size(body[i].op) for i in found)
            offset = f"x{base} - {self.base}"
            reach = f"(k - 1) * {abs(step)}"
            if step > 0:
                tests.append(f"{-low} <= {offset} <= {self.ram_size - high} - {reach}")
            else:
                tests.append(f"{-low} + {reach} <= {offset} <= {self.ram_size - high}")
            if widest > 1:
                tests.append(f"not ({offset}) & {widest - 1}")
        return " and ".join(tests)

    def _burst(self, block: _Block, body: list[Insn], burst: _Burst) -> None:
        """Code run before a copy loop's passes: all but its last pass in one burst of
        the device (what the loop moves goes between the device and RAM as one slice),
        if the device's route offers bursts and the RAM side lies wholly in RAM. The
        regular passes then do the rest, from where the burst stopped."""
        count = len(block.insns)
        size = burst.size
        device = body[burst.device]
        cache = f"D{self.routes + burst.cache}"
        p, e, v = _reg(burst.pointer), self._src(burst.end), self._dst(burst.value)
        b = self._src(device.rs1)
        delta = (burst.ram_offset - self.base) & M32
        emit = self._emit
        emit(f"k = ({e} - {p}) & 0xFFFFFFFF", 1)
        emit(f"if k > {2 * size} and not k & {size - 1}:", 1)
        emit(f"k = min((k >> {size.bit_length() - 1}) - 1, ({self.last} - n) // {count})", 2)
        emit(f"q = ({b} + {device.imm}) & 0xFFFFFFFF", 2)
        emit(f"o = ({p} + {delta:#x}) & 0xFFFFFFFF", 2)
        emit(f"if not {cache}[0] <= q < {cache}[1]:", 2)
        emit(f"PRIME(q, {size}, {not burst.reads}, {cache})", 3)
        emit(f"if k > 0 and {cache}[4] is not None and {cache}[0] <= q < {cache}[1] "
             f"and o + k * {size} <= {self.ram_size}:", 2)
        emit(f"C.instret = I0 + n + {burst.device}", 3)
        emit(f"C.pc = {block.start + 4 * burst.device:#x}", 3)
        if burst.reads:
            emit(f"data = {cache}[4](q - {cache}[2], {size}, k)", 3)
            emit("m = len(data)", 3)
            emit("if m:", 3)
            emit("R[o:o + m] = data", 4)
            emit(f"{v} = int.from_bytes(data[m - {size}:], 'little')", 4)
        else:
            emit(f"m = {cache}[4](q - {cache}[2], {size}, R[o:o + k * {size}]) * {size}", 3)
            emit("if m:", 3)
            emit(f"{v} = int.from_bytes(R[o + m - {size}:o + m], 'little')", 4)
        emit(f"{p} = ({p} + m) & 0xFFFFFFFF", 4)
        emit(f"n += (m >> {size.bit_length() - 1}) * {count}", 4)

    def _body(self, body: list[Insn], start: int) -> None:
        """A block's straight-line instructions. A stretch in which two or more loads and
        stores share a base register that nothing in the stretch changes before them is
        emitted twice: once for when one test per shared base shows all of their
        accesses aligned and inside RAM (each then one subscript, with no test of its
        own), once as usual for any other case (a device, a fault, the end of RAM)."""
        self.bits = {}
        self.masks = set()
        self.forward = _forwarded(body, not self.wraps, self.address_only)
        self.skipping, self.skipped = self.skipped, set()
        self.moved = set()
        idx = 0
        while idx < len(body):
            stretch = self._shared_base_stretch(body, idx)
            if stretch is None:
                self._insn(body[idx], start + 4 * idx, idx)
                idx += 1
                continue
            end, bases = stretch
            self._ram_stretch(body, idx, end, bases, start)
            idx = end

    def _shared_base_stretch(self, body: list[Insn],
                             first: int) -> tuple[int, dict[int, list[int]]] | None:
        """From `body[first]`, a load or store, the longest stretch (up to MAX_STRETCH
        instructions) in which no access's base register was written earlier in the
        stretch: its end (exclusive) and, per base register that two or more of its
        naturally aligned accesses share, their indices in `body`. None if there is no
        such base."""
        head = body[first]
        if self.wraps or (head.op not in LOAD_OPS and head.op not in STORE_OPS):
            return None
        written: set[int] = set()
        by_base: dict[int, list[int]] = {}
        for idx in range(first, min(len(body), first + MAX_STRETCH)):
            insn = body[idx]
            if insn.op in LOAD_OPS or insn.op in STORE_OPS:
                if insn.rs1 in written:
                    break
                if not insn.imm % _access_size(insn.op):
                    by_base.setdefault(insn.rs1, []).append(idx)
            if insn.op not in STORE_OPS and insn.rd:
                written.add(insn.rd)
        shared = {base: found for base, found in by_base.items() if base and len(found) >= 2}
        if not shared:
            return None
        return max(max(found) for found in shared.values()) + 1, shared

    def _ram_stretch(self, body: list[Insn], first: int, end: int,
                     bases: dict[int, list[int]], start: int) -> None:
        """body[first:end] twice: under the RAM tests of `bases` (base register -> the
        indices of its accesses), those accesses as bare subscripts; else as usual. Once
        only, with no test, where a counted loop has tested all of them already."""
        tested = all(i in self.walking for found in bases.values() for i in found)
        tests = []
        fast: dict[int, int] = {}  # index of an access a test covers -> its base register
        # both versions start from what is known before them
        bits, masks = dict(self.bits), set(self.masks)
        carried, pending = dict(self.carried), dict(self.pending)
        for base, found in bases.items():
            accesses = [body[i] for i in found]
            sizes = [_access_size(i.op) for i in accesses]
            low = min(i.imm for i in accesses)
            high = max(i.imm + size for i, size in zip(accesses, sizes, strict=True))
            self._address(base, 0, f"o{base}")
            test = f"{-low} <= o{base} <= {self.ram_size - high}"
            if max(sizes) > 1:
                test += f" and not o{base} & {max(sizes) - 1}"
            tests.append(test)
            fast.update((i, base) for i in found)
        if not tested:
            self._emit(f"if {' and '.join(tests)}:", 1)
            self.indent += 1
        for base, found in bases.items():
            sizes = {_access_size(body[i].op) for i in found}
            if 4 in sizes:
                self._emit(f"w{base} = o{base} >> 2", 1)
            if 2 in sizes:
                self._emit(f"h{base} = o{base} >> 1", 1)
        for idx in range(first, end):
            insn = body[idx]
            base = fast.get(idx)
            if base is None:
                self._insn(insn, start + 4 * idx, idx)
            elif insn.op in LOAD_OPS:
                self._emit(f"{self._dst(insn.rd)} = {_load_at(insn.op, insn.imm, base)}", 1)
                self._loaded(insn)
            else:
                self._emit(_store_at(insn.op, insn.imm, self._src(insn.rs2), base), 1)
        if tested:
            return
        self.indent -= 1
        self.bits, self.masks, self.carried, self.pending = bits, masks, carried, pending
        self._emit("else:", 1)
        self.indent += 1
        for idx in range(first, end):
            self._insn(body[idx], start + 4 * idx, idx)
        self.indent -= 1

    def _insn(self, insn: Insn, pc: int, idx: int) -> None:
        op = insn.op
        emit = self._emit
        if idx in self.skipping:
            self.moved.add(insn.rd)
            return
        if op in LOAD_OPS:
            self._load(insn, pc, idx)
            return
        if op in STORE_OPS:
            self._store(insn, pc, idx)
            return
        if op == "fence" or not insn.rd:
            return  # no architectural effect (rd = x0 discards the result)
        value = expression(insn, pc, self._operand(insn.rs1), self._operand(insn.rs2))
        if idx in self.forward:
            self.carried[insn.rd] = value
            return
        d = self._dst(insn.rd)
        self.bits[insn.rd] = value.bits
        if value.flag is not None:
            self.masks.add(insn.rd)
        emit(f"{d} = {value.text}", 1)

    def _address(self, r: int, imm: int, name: str = "o") -> None:
        """`name` = the address register r + imm points at, less RAM's base (`_offset`);
        for a register held at its start value, from that value and the passes so far."""
        step = self.held.get(r)
        if step is None:
            self._offset(self._src(r), imm, name)
            return
        ahead = step if r in self.moved else 0
        self._emit(f"{name} = {_after(f'O{r}', 'i', step, imm + ahead)}", 1)

    def _forwarded_address(self, value: Operand, imm: int) -> None:
        """o = `value`, an address computed only for one load, plus imm, less RAM's base:
        a sum's constant term joins imm; a register term a counted loop leaves alone is
        taken as B{r}, its offset from RAM's base, worked out once before the loop
        (`_hoist`); any other value is taken before its 32-bit mask (a value outside
        [0, 2^32) fails the RAM test, and the device path masks the address)."""
        if value.terms is not None:
            for term, other in (value.terms, value.terms[::-1]):
                constant = _literal(term.text)
                if constant is not None:
                    self._offset(_parenthesised(other.text), constant + imm)
                    return
            for term, other in (value.terms, value.terms[::-1]):
                r = _register_of(term.text)
                if r in self.invariant:
                    self.hoisted[r] = None
                    offset = f" + {imm}" if imm > 0 else f" - {-imm}" if imm else ""
                    self._emit(f"o = {_parenthesised(other.text)} + B{r}{offset}", 1)
                    return
        self._offset(f"({value.unwrapped or value.text})", imm)

    def _offset(self, base_reg: str, imm: int, name: str = "o") -> None:
        """`name` = address - RAM base: exact when no wrap can reach RAM, else mod 2^32."""
        delta = imm - self.base
        if self.wraps:
            self._emit(f"{name} = ({base_reg} + {delta & M32:#x}) & 0xFFFFFFFF", 1)
        else:
            sign = "-" if delta < 0 else "+"
            self._emit(f"{name} = {base_reg} {sign} {abs(delta)}", 1)

    def _in_ram(self, size: int) -> str:
        """The test for an aligned access of `size` bytes at offset o inside RAM."""
        ram = self.ram_size
        if ram & (ram - 1) == 0:
            return f"not o & {~(ram - 1) | (size - 1)}"
        limit = (ram & -size) - size
        return f"0 <= o <= {limit}" + (f" and not o & {size - 1}" if size > 1 else "")

    def _io(self, call: str, idx: int, pc: int, size: int, result: str | None,
            value: str = "", base: tuple[int, int] | None = None) -> None:
        """The path for anything but an aligned RAM access, through route cache Dk:
        the cached device handler if the address is in its range, else `call`. A `base`
        (register, offset) whose value went into the address only is written first, for
        a trap to see it."""
        cache = f"D{self.routes}"
        self.routes += 1
        lhs = f"{result} = " if result is not None else ""
        self._emit("else:", 1)
        if self.pass_start is not None:
            self._emit(f"n = {self.pass_start}", 2)
        for r, step in self.held.items():
            passes = "(i + 1)" if r in self.moved else "i"
            self._emit(f"{self._dst(r)} = ({_after(f'O{r}', passes, step, self.base)}) "
                       "& 0xFFFFFFFF", 2)
        self._emit(f"C.instret = I0 + n + {idx}", 2)
        self._emit(f"C.pc = {pc:#x}", 2)
        self._emit(f"q = (o + {self.base:#x}) & 0xFFFFFFFF", 2)
        if base is not None:
            r, imm = base
            value_of = f"(q - {imm}) & 0xFFFFFFFF" if imm else "q"
            self.written.add(r)
            self._emit(f"x{r} = {value_of}", 2)
        for r, imm in self.pending.items():
            self._exact(r, imm, 2)
        self._emit(f"{lhs}{cache}[3](q - {cache}[2], {size}{value}) "
                   f"if {cache}[0] <= q < {cache}[1] else {call.format(cache=cache)}", 2)

    def _exact(self, r: int, imm: int, depth: int) -> None:
        """Register r, whose value is A{r} (`pending`), written to its local."""
        self.written.add(r)
        self._emit(f"x{r} = (A{r} + {self.base - imm:#x}) & 0xFFFFFFFF", depth)

    def _leave_if_attention(self, idx: int, pc: int) -> None:
        self._emit("if C.attention:", 2)
        self._emit(f"n += {idx + 1}", 3)
        self._emit(f"pc = {pc + 4:#x}", 3)
        self._emit("break", 3)

    def _load(self, insn: Insn, pc: int, idx: int) -> None:
        size = _LOAD_SIZE[insn.op]
        forwarded = self.carried.pop(insn.rs1, None) if insn.rs1 else None
        if forwarded is None:
            self._address(insn.rs1, insn.imm)
        else:
            self._forwarded_address(forwarded, insn.imm)
            if insn.rd != insn.rs1:
                self._emit(f"A{insn.rs1} = o", 1)
        d = self._dst(insn.rd)
        if idx in self.walking:
            self._emit(f"{d} = {_LOAD_FAST[insn.op]}", 1)
            self._loaded(insn)
            return
        self._emit(f"if {self._in_ram(size)}:", 1)
        self._emit(f"{d} = {_LOAD_FAST[insn.op]}", 2)
        self._io(f"LD(q, {size}, {pc:#x}, {{cache}})", idx, pc, size, d,
                 base=None if forwarded is None else (insn.rs1, insn.imm))
        if insn.op == "lb":
            self._emit(f"{d} = SB[{d}]", 2)
        elif insn.op == "lh":
            self._emit(f"{d} = (({d} ^ 0x8000) - 0x8000) & 0xFFFFFFFF", 2)
        self._leave_if_attention(idx, pc)
        self._loaded(insn)
        if forwarded is not None and insn.rd != insn.rs1:
            self.pending[insn.rs1] = insn.imm

    def _loaded(self, insn: Insn) -> None:
        """A zero-extending load's value has its access's width (devices answer within
        it, as RAM does)."""
        if insn.rd and insn.op in ("lbu", "lhu"):
            self.bits[insn.rd] = 8 * _LOAD_SIZE[insn.op]

    def _store(self, insn: Insn, pc: int, idx: int) -> None:
        size = _STORE_SIZE[insn.op]
        v = self._src(insn.rs2)
        if size < 4 and v != "0":
            v = f"({v} & {(1 << (8 * size)) - 1:#x})"
        self._address(insn.rs1, insn.imm)
        if idx in self.walking:
            self._emit(_STORE_FAST[insn.op].format(v=v), 1)
            return
        self._emit(f"if {self._in_ram(size)}:", 1)
        self._emit(_STORE_FAST[insn.op].format(v=v), 2)
        self._io(f"ST(q, {size}, {v}, {pc:#x}, {{cache}})", idx, pc, size, None, f", {v}")
        self._leave_if_attention(idx, pc)
