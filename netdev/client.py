"""NetClient — QEMU's NetClientState + NetClientInfo (include/net/net.h, net/net.c).

A NetClient is one end of a point-to-point link: a NIC, a socket netdev or a hub port;
its `kind` says which (QEMU's NetClientInfo.type), so the net layer can tell a NIC from
the rest (`info network`, the startup warnings, `set_link`).
Two clients are joined with `connect_peers`; frames one sends land in the other's
incoming queue (`netdev.queue.NetQueue`, whose docstring holds the delivery contract).

Subclasses override the hooks `receive`, `can_receive`, `cleanup` and, for speed,
`receive_batch` (frames in wire format, see `netdev.framing.RecordBatch`). The owner of
a client calls `send` / `send_async` / `send_batch`, `flush_queued` and `purge_queued`.
Observers (pcap dump filters) hang on `filters` and see frames in both directions.
Shapers (`netdev.filter_netem.NetemFilter`) hang on `shapers`: they sit on the path
before the observers and may pass, drop, delay, duplicate or alter each frame, handing
what goes on to the next stage (the next shaper, then the observers and the peer's
queue) through a `forward` callable, now or later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal, Protocol

from emu.core.errors import UserError
from emu.core.trace import DISABLED, Trace
from netdev.framing import RecordBatch
from netdev.queue import NetQueue, SentCallback

ClientKind = Literal["nic", "netdev", "hubport"]


class FrameObserver(Protocol):
    """A filter that watches frames without altering traffic (QEMU's filter-dump)."""

    def observe(self, frame: bytes, sent_by_owner: bool) -> None: ...

    def observe_batch(self, batch: RecordBatch, sent_by_owner: bool) -> None: ...


class FrameShaper(Protocol):
    """A filter on the path that may alter traffic (QEMU's NetFilterClass.receive_iov,
    which may pass a frame, consume it, or hold it and pass it on later)."""

    def shape(self, frame: bytes, sent_by_owner: bool, forward: Forward) -> int:
        """Hand `frame` (or copies, or nothing) to `forward`, now or later. Return what the
        sender sees: the first immediate `forward`'s result, or > 0 if nothing went on now."""
        ...


Forward = Callable[[bytes], int]


class NetClient:
    """One end of a link: name, model, peer, link state, info string, incoming queue."""

    # Set by each subclass: "nic" for a guest's network card, "hubport" for a port of a
    # hub, "netdev" for a host backend (and for any other client, e.g. a test's peer).
    kind: ClassVar[ClientKind] = "netdev"

    def __init__(self, name: str, model: str) -> None:
        self.name = name
        self.model = model
        self.peer: NetClient | None = None
        self.link_down = False
        self.info_str = ""
        self.receive_disabled = False
        self.queue_index = 0
        self.incoming_queue = NetQueue(self)
        self.filters: list[FrameObserver] = []
        self.shapers: list[FrameShaper] = []
        self.trace: Trace = DISABLED

    def set_trace(self, trace: Trace) -> None:
        """Trace this client and its incoming queue with `trace` (see emu.core.trace)."""
        self.trace = trace
        self.incoming_queue.trace = trace

    # -- hooks ---------------------------------------------------------------------------

    def receive(self, frame: bytes) -> int:
        """Take one frame: > 0 consumed, 0 not now (re-offered later), < 0 dropped."""
        return -1

    def receive_batch(self, batch: RecordBatch) -> int:
        """Take frames from the front of `batch`; return how many were taken (consumed or
        dropped). Stopping short means "not now" for the rest. Default: frame by frame."""
        taken = 0
        receive = self.receive
        for frame in batch.frames():
            if receive(frame) == 0:
                return taken
            taken += 1
        return taken

    def can_receive(self) -> bool:
        return True

    def cleanup(self) -> None:
        """Release host resources (sockets, fd handlers); called once by Net.close."""

    def peer_flushed(self) -> None:
        """Our peer became able to receive again; a hub port passes that on to its hub."""

    def relay_record(self, sender: NetClient, record: memoryview) -> bool:
        """Cut-through for a lone frame: our peer `sender` holds one whole record (wire
        format, in a buffer it reuses after the call). Put it on the wire now and return
        True only when the layered path (`sender.send_batch` and on) would do exactly
        that at once, with nothing else to do or to observe; otherwise do nothing and
        return False, and the sender takes the layered path. Default: always False."""
        return False

    def write_record_now(self, record: memoryview) -> bool:
        """The end of a cut-through (see `relay_record`): write `record` to the wire now
        and return True if this client would write it through at once anyway (nothing of
        its own waiting), else do nothing and return False. Default: always False."""
        return False

    # -- used by the owner -----------------------------------------------------------------

    def send(self, frame: bytes) -> int:
        """qemu_send_packet: send without completion callback."""
        return self._send(frame, None)

    def send_async(self, frame: bytes, on_sent: SentCallback) -> int:
        """qemu_send_packet_async: 0 means queued; `on_sent` fires once when it is done."""
        return self._send(frame, on_sent)

    def _send(self, frame: bytes, on_sent: SentCallback | None) -> int:
        peer = self.peer
        if self.link_down or peer is None:
            if self.trace.net_queue_drop:
                self._trace_drop(1, peer)
            return len(frame) or 1
        if self.shapers or peer.shapers:
            return self._send_shaped(frame, on_sent, 0)
        if self.filters or peer.filters:
            self._observe(frame, peer)
        return peer.incoming_queue.send(self, frame, on_sent)

    def _send_shaped(self, frame: bytes, on_sent: SentCallback | None, stage: int) -> int:
        """Send `frame` through the shapers from `stage` on (ours in the tx direction, then
        the peer's in the rx direction), then to the observers and the peer's queue. A
        frame a shaper passes on later finds the link as it is then."""
        peer = self.peer
        if self.link_down or peer is None:
            if self.trace.net_queue_drop:
                self._trace_drop(1, peer)
            return len(frame) or 1
        own = self.shapers
        if stage == len(own) + len(peer.shapers):
            if self.filters or peer.filters:
                self._observe(frame, peer)
            return peer.incoming_queue.send(self, frame, on_sent)
        shaper = own[stage] if stage < len(own) else peer.shapers[stage - len(own)]
        # Only the first frame passed on while shape() runs carries the callback: it fires
        # once, and a copy or a frame passed on later has no sender waiting for it.
        pending = [on_sent]

        def forward(out: bytes) -> int:
            callback = pending.pop() if pending else None
            return self._send_shaped(out, callback, stage + 1)

        try:
            return shaper.shape(frame, stage < len(own), forward)
        finally:
            pending.clear()

    def send_batch(self, batch: RecordBatch, on_sent: SentCallback | None = None) -> int:
        """Send a batch; returns how many frames were taken at once. If fewer than all,
        the rest is queued as one entry and `on_sent` (if any) fires once for it."""
        peer = self.peer
        if self.link_down or peer is None:
            if self.trace.net_queue_drop:
                self._trace_drop(batch.count, peer)
            return batch.count
        if self.shapers or peer.shapers:
            # Frame by frame and without backpressure: a shaped link takes every frame
            # (the queue's 10000-frame limit still drops beyond that).
            for frame in batch.frames():
                self._send_shaped(bytes(frame), None, 0)
            return batch.count
        if self.filters or peer.filters:
            self._observe_batch(batch, peer)
        return peer.incoming_queue.send_batch(self, batch, on_sent)

    def _trace_drop(self, frames: int, peer: NetClient | None) -> None:
        self.trace.emit("net_queue_drop", sender=self.name,
                        receiver=peer.name if peer is not None else "-", frames=frames,
                        reason="no_peer" if peer is None else "link_down")

    def _observe(self, frame: bytes, peer: NetClient) -> None:
        for observer in self.filters:
            observer.observe(frame, True)
        for observer in peer.filters:
            observer.observe(frame, False)

    def _observe_batch(self, batch: RecordBatch, peer: NetClient) -> None:
        for observer in self.filters:
            observer.observe_batch(batch, True)
        for observer in peer.filters:
            observer.observe_batch(batch, False)

    def flush_queued(self) -> None:
        """qemu_flush_queued_packets: the receiver can take frames again."""
        self.receive_disabled = False
        self.incoming_queue.flush()
        # After our own backlog, so a hub sees an empty queue when it re-offers frames.
        if self.peer is not None:
            self.peer.peer_flushed()

    def purge_queued(self) -> None:
        """qemu_purge_queued_packets: drop frames this client queued at its peer."""
        if self.peer is not None:
            self.peer.incoming_queue.purge(self)


def connect_peers(a: NetClient, b: NetClient) -> None:
    """Join two clients into a link (both must be unpeered)."""
    for client in (a, b):
        if client.peer is not None:
            raise UserError(f"netdev '{client.name}' is already in use")
    if a is b:
        raise UserError(f"netdev '{a.name}' cannot be its own peer")
    a.peer = b
    b.peer = a

