"""Trace events to frames and arrows: the layout of a sequence diagram (QEMU: none;
`scripts/simpletrace.py` prints events one per line and stops there).

Each machine's events are cut into *segments*, one frame's passage through that machine:
a transmit (the guest's remote-DMA write, the registers around it, `ne2000_transmit`,
the queue hand-off, the socket write) or a receive (the socket read, the queue,
`ne2000_receive`, the interrupt, the driver's remote-DMA reads of that ring page).
A transmit in one machine is joined to the receives of the same length in the others
(in order of time when the lines of all machines are on one clock, else first in first
out, as TCP delivers), which makes a `Frame`. The machines' lines are then merged into
one causal order: a receive is never placed before the write that sent it, and on one
clock the order is the time's. One clock means one file (a deterministic lab's merged
trace); the `-D` files of separate toynic processes each count their own machine's
virtual time, which orders that machine's lines only. Register lines that belong to no
frame (the driver's probe) stay out.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from emu.tracetool.parse import Event
from emu.tracetool.qemumap import WIRE, lookup

LAYERS = ("guest", "nic", "queue", "socket", "wire")
LAYER_LABELS = {"guest": "guest driver", "nic": "NE2000", "queue": "net queue",
                "socket": "socket/hub", "wire": "wire"}
LEVELS = ("frame", "dma", "register")
RECORD_HEADER = 4  # a stream socket's length prefix
SETUP_EVENTS = frozenset({
    "ne2000_reset", "net_socket_connect", "net_socket_accept", "net_socket_connect_error",
    "net_socket_disconnect", "net_socket_oversize", "net_socket_empty",
    "net_socket_backpressure", "net_hub_hold"})


@dataclass(eq=False)
class Segment:
    """One frame's passage through one machine."""

    machine: str
    direction: str  # "tx" or "rx"
    events: list[Event] = field(default_factory=list)
    length: int | None = None
    dropped: bool = False
    wire_event: Event | None = None  # the socket write (tx) or read (rx)

    def first_seq(self) -> int:
        return min((event.seq for event in self.events), default=0)


@dataclass(eq=False)
class Frame:
    """A frame: sent by one machine (tx), received by others (rx)."""

    tx: Segment | None
    rx: list[Segment]
    number: int = 0
    data: bytes | None = None

    @property
    def segments(self) -> list[Segment]:
        return ([self.tx] if self.tx else []) + self.rx

    @property
    def length(self) -> int | None:
        return next((s.length for s in self.segments if s.length is not None), None)

    def first_seq(self) -> int:
        return min(segment.first_seq() for segment in self.segments)


@dataclass
class Story:
    """Every frame of the traces, in causal order, and what belongs to none."""

    machines: list[str]
    frames: list[Frame]
    loose: list[Event]
    timed: bool
    # The machines' times are on one clock (a deterministic lab's merged trace), not
    # each process's own virtual clock (one -D file per toynic process).
    one_clock: bool = False


@dataclass(frozen=True)
class Lifeline:
    machine: str
    layer: str

    @property
    def label(self) -> str:
        return LAYER_LABELS[self.layer]


@dataclass
class Arrow:
    """One step of a frame's journey, from one lifeline to another (or to itself)."""

    src: Lifeline
    dst: Lifeline
    label: str
    level: str
    event: Event | None
    style: str = "msg"  # msg, reply, drop, note, wire
    detail: str = ""  # a second line (the frame's bytes at the wire)
    time_ns: int | None = None
    ref: str = ""

    @property
    def functions(self) -> tuple[str, str]:
        return lookup(self.event.name) if self.event else WIRE

    @property
    def trace_line(self) -> str:
        if self.event is None:
            return "(no trace line: the bytes between the two machines' socket events)"
        return self.event.text


@dataclass
class Group:
    frame: Frame
    title: str
    arrows: list[Arrow]


@dataclass
class Diagram:
    lifelines: list[Lifeline]
    groups: list[Group]
    timed: bool


# -- cutting each machine's events into segments ---------------------------------------


class _Splitter:
    """Walks one machine's events in order and assigns each to a segment."""

    def __init__(self, machine: str, events: Sequence[Event]) -> None:
        self.machine = machine
        self.events = events
        self.nics = {e.fields["nic"] for e in events if "nic" in e.fields}
        self.netdevs = {e.fields["netdev"] for e in events if "netdev" in e.fields}
        self.segments: list[Segment] = []
        self.loose: list[Event] = []
        self.pending: list[Event] = []
        self.current: Segment | None = None
        self.tx_open: Segment | None = None
        self.last_tx: Segment | None = None
        self.dma_owner: Segment | None = None
        self.sock_out: deque[list] = deque()  # [segment, record bytes not yet written]
        # A transmit whose net_queue_send is not printed yet (it is printed when the send
        # returns) and the record bytes a socket wrote for it meanwhile (write-through).
        self.awaiting_send: Segment | None = None
        self.prewritten = 0
        self.early_writes: list[Event] = []
        self.rx_waiting: deque[Segment] = deque()
        self.last_read: list[Segment] = []
        self.carry: list[Event] = []  # socket reads that held no complete record
        self.ring: dict[int, Segment] = {}

    def new(self, direction: str) -> Segment:
        segment = Segment(self.machine, direction)
        self.segments.append(segment)
        return segment

    def flush(self, target: Segment | None) -> None:
        if target is not None:
            target.events.extend(self.pending)
        else:
            self.loose.extend(self.pending)
        self.pending.clear()

    def outgoing(self, event: Event) -> bool:
        """A net-queue event on the NIC's transmit side (NIC -> netdev)?"""
        sender = event.fields.get("sender", "")
        receiver = event.fields.get("receiver", "")
        return sender in self.nics or (receiver in self.netdevs and sender not in self.netdevs)

    def run(self) -> None:
        for event in self.events:
            handler = getattr(self, "on_" + event.name, None)
            if handler is not None:
                handler(event)
            elif event.name in SETUP_EVENTS:
                self.loose.append(event)
            else:
                self.pending.append(event)
        self.flush(self.current)
        # Events join their segment out of order (a transmit's tail arrives after its
        # socket write): each segment tells its part in the machine's own order.
        position = {id(event): index for index, event in enumerate(self.events)}

        def key(event: Event) -> tuple[int, int]:
            anchor = event.drawn_after
            return (position[id(anchor)], 1) if anchor else (position[id(event)], 0)

        for segment in self.segments:
            segment.events.sort(key=key)

    # the guest's side of the card

    def on_ne2000_dma_start(self, event: Event) -> None:
        if event.fields.get("dir") == "write":
            segment = self.new("tx")
            self.tx_open = segment
            # Only the driver's set-up of this DMA is the new frame's; what came before it
            # is the end of the previous frame (or the card's probe).
            cut = _preamble_start(self.pending)
            self.pending[:cut], rest = [], self.pending[:cut]
            if self.current is not None:
                self.current.events.extend(rest)
            else:
                self.loose.extend(rest)
        else:
            segment = self.ring.get(event.int_field("rsar") >> 8)
        self.dma_owner = segment
        if segment is None:  # e.g. the PROM read at probe time
            self.pending.append(event)
            return
        self.flush(segment)
        segment.events.append(event)
        self.current = segment

    def on_ne2000_dma_done(self, event: Event) -> None:
        if self.dma_owner is None:
            self.pending.append(event)
            return
        self.flush(self.dma_owner)
        self.dma_owner.events.append(event)

    def on_ne2000_transmit(self, event: Event) -> None:
        segment = self.tx_open or self.new("tx")
        self.flush(segment)
        segment.events.append(event)
        segment.length = event.int_field("len")
        segment.dropped = event.name == "ne2000_transmit_error"
        self.tx_open = None
        self.current = self.last_tx = self.awaiting_send = segment
        self.prewritten = 0
        self.early_writes.clear()

    on_ne2000_transmit_error = on_ne2000_transmit

    def on_ne2000_receive(self, event: Event) -> None:
        self.flush(self.current)  # what the driver did since belongs to the frame before
        segment = self.rx_waiting.popleft() if self.rx_waiting else self.new("rx")
        segment.events.append(event)
        segment.length = event.int_field("len", segment.length or 0)
        if event.name == "ne2000_receive":
            before = event.fields.get("curr", "").split("->")[0]
            with contextlib.suppress(ValueError):
                self.ring[int(before, 0)] = segment
        else:
            segment.dropped = True
        self.current = segment

    on_ne2000_receive_drop = on_ne2000_receive

    def on_irq_set(self, event: Event) -> None:
        line = event.fields.get("line", "")
        if self.current is not None and any(line.startswith(nic) for nic in self.nics):
            self.current.events.append(event)
        else:
            self.pending.append(event)

    # the net queue

    def _net_queue(self, event: Event) -> None:
        if self.outgoing(event):
            target = self.last_tx
            if target is None:
                self.loose.append(event)
                return
            target.events.append(event)
            result = event.int_field("result", 1)
            if event.name == "net_queue_drop" or result < 0:
                target.dropped = True
            elif event.name in ("net_queue_send", "net_queue_append") and target.length:
                owed = target.length + RECORD_HEADER
                if target is self.awaiting_send:
                    owed -= self.prewritten
                if owed > 0:
                    self.sock_out.append([target, owed])
            if target is self.awaiting_send:
                # The writes came from inside this send: drawn after it, where they happened.
                for write in self.early_writes:
                    write.drawn_after = event
                self.awaiting_send, self.prewritten = None, 0
                self.early_writes.clear()
        elif self.last_read:
            for segment in self.last_read:
                segment.events.append(event)
            # Printed when the delivery returns, after the ring write it caused; drawn
            # right after the socket read, where it happened.
            event.drawn_after = self.last_read[0].wire_event
        else:
            self.pending.append(event)

    on_net_queue_send = on_net_queue_send_batch = on_net_queue_append = _net_queue
    on_net_queue_drop = _net_queue

    # the socket

    def on_net_socket_write(self, event: Event) -> None:
        left = event.int_field("bytes")
        touched: list[Segment] = []
        early = self.awaiting_send
        if not self.sock_out and early is not None and early.length:
            # Written from inside the send, before its net_queue_send line.
            take = min(left, early.length + RECORD_HEADER - self.prewritten)
            if take > 0:
                self.prewritten += take
                left -= take
                touched.append(early)
                self.early_writes.append(event)
        while left > 0 and self.sock_out:
            head = self.sock_out[0]
            take = min(left, head[1])
            left -= take
            head[1] -= take
            touched.append(head[0])
            if head[1] == 0:
                self.sock_out.popleft()
        if not touched and not self.nics and left > RECORD_HEADER:
            # only the socket is traced: one record per write
            segment = self.new("tx")
            segment.length = left - RECORD_HEADER
            touched.append(segment)
        for segment in touched:
            segment.events.append(event)
            segment.wire_event = event
        if not touched:
            self.loose.append(event)

    def on_net_socket_partial_send(self, event: Event) -> None:
        if self.sock_out:
            self.sock_out[0][0].events.append(event)
        else:
            self.loose.append(event)

    def on_net_socket_read(self, event: Event) -> None:
        count = event.int_field("frames")
        if count <= 0:
            self.carry.append(event)
            return
        segments = [self.new("rx") for _ in range(count)]
        if count == 1:
            segments[0].length = event.int_field("bytes") - RECORD_HEADER
        for segment in segments:
            segment.events.extend(self.carry)
            segment.events.append(event)
            segment.wire_event = event
        self.carry.clear()
        self.rx_waiting.extend(segments)
        self.last_read = segments


def _preamble_start(pending: list[Event]) -> int:
    """Where a transmit's register set-up begins in `pending`: the trailing run of register
    writes, from its last ISR acknowledgement (the driver clears ISR.RDC first, as Linux's
    ne_block_output does) or else from its first write."""
    start = len(pending)
    while start > 0 and pending[start - 1].name == "ne2000_ioport_write":
        start -= 1
    acks = [i for i in range(start, len(pending)) if pending[i].fields.get("reg") == "ISR"]
    return acks[-1] if acks else start


# -- joining machines ------------------------------------------------------------------


def _match(segments: list[Segment], machines: list[str], timed: bool) -> list[Frame]:
    """Join each receive to the transmit it came from; every segment ends in a Frame."""
    sent = [s for s in segments if s.direction == "tx" and not s.dropped]
    frames = {id(s): Frame(s, []) for s in segments if s.direction == "tx"}
    loose_rx: list[Frame] = []
    for machine in machines:
        taken: set[int] = set()
        for rx in (s for s in segments if s.direction == "rx" and s.machine == machine):
            rx_time = rx.wire_event.time_ns if rx.wire_event else None
            candidates = [
                tx for tx in sent
                if tx.machine != machine and id(tx) not in taken
                and (rx.length is None or tx.length == rx.length)
                and not (timed and rx_time is not None and tx.wire_event is not None
                         and tx.wire_event.time_ns is not None
                         and tx.wire_event.time_ns > rx_time)]
            if timed:
                candidates.sort(key=lambda tx: _time(tx.wire_event))
            if candidates:
                taken.add(id(candidates[0]))
                frames[id(candidates[0])].rx.append(rx)
            else:
                loose_rx.append(Frame(None, [rx]))
    return [*frames.values(), *loose_rx]


def _time(event: Event | None) -> int:
    return event.time_ns if event is not None and event.time_ns is not None else 0


def _order(events_by_machine: dict[str, list[Event]], frames: list[Frame], timed: bool) -> None:
    """Number every event (`seq`) in one causal order across machines."""
    after: dict[int, list[Event]] = {}
    for frame in frames:
        if frame.tx is None:
            continue
        cause = frame.tx.wire_event or (frame.tx.events[-1] if frame.tx.events else None)
        for rx in frame.rx:
            if cause is not None and rx.events:
                after.setdefault(id(rx.events[0]), []).append(cause)
    heads = {machine: 0 for machine in events_by_machine}
    done: set[int] = set()
    last: str | None = None
    seq = 0
    total = sum(len(events) for events in events_by_machine.values())
    while seq < total:
        live = [m for m, i in heads.items() if i < len(events_by_machine[m])]
        ready = [m for m in live
                 if all(id(c) in done for c in after.get(id(events_by_machine[m][heads[m]]), ()))]
        ready = ready or live  # a cycle only inconsistent traces make: go on regardless
        if timed:
            pick = min(ready, key=lambda m: (_time(events_by_machine[m][heads[m]]),
                                             live.index(m)))
        else:
            pick = last if last in ready else ready[0]
        event = events_by_machine[pick][heads[pick]]
        heads[pick] += 1
        event.seq = seq
        done.add(id(event))
        seq += 1
        last = pick


def build(events: Sequence[Event], machines: Sequence[str],
          captures: Iterable[Sequence[bytes]] = ()) -> Story:
    """Cut, join and order: the frames of a set of traces."""
    by_machine: dict[str, list[Event]] = {m: [] for m in machines}
    for event in events:
        by_machine.setdefault(event.machine, []).append(event)
    timed = all(event.time_ns is not None for event in events)
    # Separate files are separate processes, each with its own virtual clock: their
    # times order the lines of a machine but say nothing about one machine against another.
    one_clock = timed and len({event.source for event in events}) == 1
    segments: list[Segment] = []
    loose: list[Event] = []
    for machine, mine in by_machine.items():
        splitter = _Splitter(machine, mine)
        splitter.run()
        segments += [s for s in splitter.segments if s.events]
        loose += splitter.loose
    frames = _match(segments, list(by_machine), one_clock)
    _order(by_machine, frames, one_clock)
    frames.sort(key=Frame.first_seq)
    for number, frame in enumerate(frames, 1):
        frame.number = number
    for capture in captures:
        _attach_bytes(frames, capture)
    return Story(list(by_machine), frames, loose, timed, one_clock)


def _attach_bytes(frames: list[Frame], capture: Sequence[bytes]) -> None:
    """Give frames their bytes from a capture, in order, matching lengths."""
    cursor = 0
    for frame in frames:
        for index in range(cursor, min(cursor + 4, len(capture))):
            if len(capture[index]) == frame.length:
                if frame.data is None:
                    frame.data = bytes(capture[index])
                cursor = index + 1
                break


# -- arrows -----------------------------------------------------------------------------


def machine_order(story: Story) -> list[str]:
    """Left to right: the machine that sends the first frame, then the others."""
    first = next((f.tx.machine for f in story.frames if f.tx is not None), None)
    return sorted(story.machines, key=lambda m: (m != first, story.machines.index(m)))


def lifelines(machines: Sequence[str]) -> list[Lifeline]:
    """Each machine's layers; every machine after the first is mirrored so that the
    wires of the first two face each other in the middle."""
    lines: list[Lifeline] = []
    for index, machine in enumerate(machines):
        layers = LAYERS if index == 0 else tuple(reversed(LAYERS))
        lines += [Lifeline(machine, layer) for layer in layers]
    return lines


def _arrow(event: Event, src: str, dst: str, label: str, level: str,
           style: str = "msg") -> Arrow:
    return Arrow(Lifeline(event.machine, src), Lifeline(event.machine, dst), label, level,
                 event, style, time_ns=event.time_ns, ref=event.ref)


def event_arrow(event: Event, outgoing: bool) -> Arrow:
    """The arrow one trace line draws. `outgoing`: a net-queue event on the send side."""
    f = event.fields
    name = event.name
    if name == "ne2000_ioport_write":
        bits = f.get("bits", "")
        # CR.TXP is the guest's "send": part of the frame-level story
        level = "frame" if "TXP" in bits.split("|") else "register"
        return _arrow(event, "guest", "nic",
                      f"{f.get('reg', '?')} ← {f.get('val', '?')} {bits}".rstrip(), level)
    if name == "ne2000_ioport_read":
        return _arrow(event, "nic", "guest", f"{f.get('reg', '?')} → {f.get('val', '?')}",
                      "register", "reply")
    if name == "ne2000_dma_start":
        if f.get("dir") == "write":
            return _arrow(event, "guest", "nic",
                          f"remote DMA: {f.get('count')} B → {f.get('rsar')}", "dma")
        return _arrow(event, "nic", "guest",
                      f"remote DMA: {f.get('count')} B ← {f.get('rsar')}", "dma", "reply")
    if name == "ne2000_dma_done":
        return _arrow(event, "nic", "guest", "DMA done (ISR.RDC)", "register", "reply")
    if name == "ne2000_transmit":
        return _arrow(event, "nic", "queue", f"transmit {f.get('len')} B", "frame")
    if name == "ne2000_transmit_error":
        return _arrow(event, "nic", "nic", f"transmit error: {f.get('reason')}", "frame",
                      "drop")
    if name == "ne2000_receive":
        page = f.get("curr", "?").split("->")[0]
        return _arrow(event, "queue", "nic", f"receive {f.get('len')} B → ring page {page}",
                      "frame")
    if name == "ne2000_receive_drop":
        return _arrow(event, "queue", "nic", f"dropped: {f.get('reason')}", "frame", "drop")
    if name == "irq_set":
        up = f.get("level") == "1"
        if f.get("line", "").endswith(".irq"):
            return _arrow(event, "nic", "guest", f"IRQ {'raised' if up else 'lowered'}",
                          "frame" if up else "register", "reply")
        return _arrow(event, "guest", "guest", f"{f.get('line')}={f.get('level')}",
                      "register", "note")
    if name in ("net_queue_send", "net_queue_send_batch"):
        count = (f"{f.get('len')} B" if name == "net_queue_send"
                 else f"{f.get('frames')} frame(s), {f.get('taken')} taken")
        src, dst = ("queue", "socket") if outgoing else ("socket", "queue")
        if outgoing:
            return _arrow(event, src, dst, f"deliver {count} to {f.get('receiver')}", "frame")
        return _arrow(event, src, dst, f"send {count} to {f.get('receiver')}", "frame")
    if name in ("net_queue_append", "net_queue_flush", "net_queue_drop", "net_queue_purge"):
        text = {"net_queue_append": f"queued ({f.get('reason')})",
                "net_queue_flush": f"flush: {f.get('delivered')} delivered",
                "net_queue_drop": f"dropped ({f.get('reason')})",
                "net_queue_purge": f"purged {f.get('frames')}"}[name]
        return _arrow(event, "queue", "queue", text, "frame",
                      "drop" if name == "net_queue_drop" else "note")
    if name == "net_socket_write":
        return _arrow(event, "socket", "wire", f"write {f.get('bytes')} B (length + frame)",
                      "frame")
    if name == "net_socket_read":
        return _arrow(event, "wire", "socket",
                      f"read {f.get('bytes')} B: {f.get('frames')} frame(s)", "frame")
    if name == "net_socket_partial_send":
        return _arrow(event, "socket", "wire", f"partial send {f.get('sent')} B", "frame")
    if name.startswith("net_hub"):
        return _arrow(event, "socket", "socket", f"hub {f.get('hub')}: {name[8:]}", "frame",
                      "note")
    fields = " ".join(f"{k}={v}" for k, v in f.items())
    return _arrow(event, "socket" if name.startswith("net") else "nic", "guest",
                  f"{name} {fields}", "register", "note")


def _keep(arrow: Arrow, level: str) -> bool:
    return LEVELS.index(arrow.level) <= LEVELS.index(level)


def frame_arrows(frame: Frame, level: str) -> list[Arrow]:
    """The arrows of one frame in the story's order: the sender's, the wire crossing
    right after the sender's socket write, each receiver's."""
    placed: list[tuple[float, Arrow]] = []
    for segment in frame.segments:
        placed += [(e.place(), event_arrow(e, segment.direction == "tx"))
                   for e in segment.events]
    tx = frame.tx
    if tx is not None and tx.events:
        sent = tx.wire_event or tx.events[-1]
        placed += [(sent.place() + 0.5, _crossing(frame, tx, rx)) for rx in frame.rx]
    placed.sort(key=lambda item: item[0])
    return [arrow for _, arrow in placed if _keep(arrow, level)]


def _crossing(frame: Frame, tx: Segment, rx: Segment) -> Arrow:
    cause = tx.wire_event
    text = describe(frame.data)[1] if frame.data else f"{frame.length}-byte frame"
    detail = hex_preview(frame.data) if frame.data else "(bytes: give the pcap too)"
    return Arrow(Lifeline(tx.machine, "wire"), Lifeline(rx.machine, "wire"), text, "frame",
                 None, "wire", detail, cause.time_ns if cause else None,
                 f"{tx.machine}→{rx.machine}")


def hex_preview(data: bytes, count: int = 16) -> str:
    more = " …" if len(data) > count else ""
    return " ".join(f"{b:02x}" for b in data[:count]) + more


def hex_dump(data: bytes) -> str:
    """xxd-style lines, for the HTML details."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset:offset + 16]
        lines.append(f"{offset:08x}: {chunk.hex(' ')}")
    return "\n".join(lines)


def _ip(data: bytes) -> str:
    return ".".join(str(b) for b in data)


def describe(data: bytes | None) -> tuple[set[str], str]:
    """(protocol names, one-line description) of an Ethernet frame."""
    if not data or len(data) < 14:
        return set(), "frame"
    ethertype = int.from_bytes(data[12:14], "big")
    body = data[14:]
    if ethertype == 0x0806 and len(body) >= 28:
        op = int.from_bytes(body[6:8], "big")
        if op == 1:
            return {"arp"}, f"ARP who has {_ip(body[24:28])}? tell {_ip(body[14:18])}"
        return {"arp"}, f"ARP reply {_ip(body[14:18])} is at {body[8:14].hex(':')}"
    if ethertype == 0x0800 and len(body) >= 20:
        proto = body[9]
        head = (body[0] & 0x0F) * 4
        src, dst = _ip(body[12:16]), _ip(body[16:20])
        payload = body[head:]
        if proto == 1 and len(payload) >= 8:
            kind = {0: "echo reply", 8: "echo request"}.get(payload[0], f"type {payload[0]}")
            seq = int.from_bytes(payload[6:8], "big")
            return {"ipv4", "ip", "icmp"}, f"ICMP {kind} {src} → {dst} seq={seq}"
        if proto == 17 and len(payload) >= 8:
            sport = int.from_bytes(payload[0:2], "big")
            dport = int.from_bytes(payload[2:4], "big")
            return {"ipv4", "ip", "udp"}, f"UDP {src}:{sport} → {dst}:{dport}"
        if proto == 6:
            return {"ipv4", "ip", "tcp"}, f"TCP {src} → {dst}"
        return {"ipv4", "ip"}, f"IPv4 proto {proto} {src} → {dst}"
    return set(), f"ethertype {ethertype:#06x}"


def frame_title(frame: Frame) -> str:
    route = " → ".join(filter(None, [frame.tx.machine if frame.tx else "?",
                                     ", ".join(s.machine for s in frame.rx)]))
    what = describe(frame.data)[1] if frame.data else f"{frame.length} bytes"
    size = f", {frame.length} bytes" if frame.data else ""
    lost = " (dropped)" if any(s.dropped for s in frame.segments) else ""
    return f"frame {frame.number}: {what}{size}, {route}{lost}"


def matches(frame: Frame, text: str) -> bool:
    """`--match`: a protocol name, or a substring of the frame's title or trace lines."""
    needle = text.lower()
    protocols, _ = describe(frame.data)
    if needle in protocols or needle in frame_title(frame).lower():
        return True
    return any(needle in e.text.lower() for s in frame.segments for e in s.events)


def diagram(story: Story, frames: Sequence[Frame], level: str) -> Diagram:
    """The picture's content: lifelines of every machine, one group of arrows per frame."""
    groups = [Group(frame, frame_title(frame), frame_arrows(frame, level)) for frame in frames]
    return Diagram(lifelines(machine_order(story)), groups, story.timed)
