"""Hubs and hub ports — QEMU's net/hub.c (`-netdev hubport,id=ID,hubid=N[,netdev=OTHER]`).

A hub copies every frame that arrives on one port to every other port. Each port is an
ordinary NetClient (model "hubport") peered with a NIC or a netdev.

Unlike QEMU 7.2's hub, which accepts a frame whenever *one* other port can take it and
lets frames pile up (or be dropped) at the slow ones, a toynic hub is paced by its
slowest port: a port takes a frame (or a batch) only when the peer of every other port
can take it right now with nothing queued ahead of it; otherwise it returns 0, the
sender's frames wait in the port's incoming queue, and the sender stops producing.
When any port's peer becomes ready again (its `flush_queued`), the hub re-offers the
waiting frames of the other ports. So nothing is lost or reordered on stream ports,
and memory stays bounded by one batch per port.
"""

from __future__ import annotations

from netdev.client import NetClient
from netdev.framing import RecordBatch


class Hub:
    """One hub: an id and its ports, newest first (QEMU lists them that way)."""

    def __init__(self, hub_id: int) -> None:
        self.id = hub_id
        self.ports: list[HubPort] = []
        self._waking = False

    def add_port(self, name: str | None = None) -> HubPort:
        port = HubPort(self, name or f"hub{self.id}port{len(self.ports)}")
        self.ports.insert(0, port)
        return port

    def ready_except(self, source: HubPort) -> bool:
        for port in self.ports:
            if port is source:
                continue
            peer = port.peer
            if peer is None or peer.link_down:
                continue
            if peer.receive_disabled or len(peer.incoming_queue) or not peer.can_receive():
                return False
        return True

    def wake(self, source: HubPort) -> None:
        """A port's peer can receive again: re-offer what the other ports hold."""
        if self._waking:
            return
        self._waking = True
        try:
            for port in self.ports:
                if port is not source and len(port.incoming_queue):
                    port.flush_queued()
        finally:
            self._waking = False


class HubPort(NetClient):
    """One port of a hub."""

    kind = "hubport"

    def __init__(self, hub: Hub, name: str) -> None:
        super().__init__(name, "hubport")
        self.hub = hub

    def can_receive(self) -> bool:
        if self.hub.ready_except(self):
            return True
        if self.trace.net_hub_hold:
            self._trace_hold()
        return False

    def _trace_hold(self) -> None:
        self.trace.emit("net_hub_hold", hub=self.hub.id, port=self.name)

    def receive(self, frame: bytes) -> int:
        if not self.hub.ready_except(self):
            if self.trace.net_hub_hold:
                self._trace_hold()
            return 0
        if self.trace.net_hub_forward:
            self._trace_forward(1, len(frame))
        for port in self.hub.ports:
            if port is not self:
                port.send(frame)
        return len(frame) or 1

    def receive_batch(self, batch: RecordBatch) -> int:
        if not self.hub.ready_except(self):
            if self.trace.net_hub_hold:
                self._trace_hold()
            return 0
        if self.trace.net_hub_forward:
            self._trace_forward(batch.count, len(batch.data) - 4 * batch.count)
        for port in self.hub.ports:
            if port is not self:
                port.send_batch(batch)
        return batch.count

    def relay_record(self, sender: NetClient, record: memoryview) -> bool:
        """The cut-through of a two-port hub: `sender`'s lone record goes straight to the
        other port's peer (`NetClient.write_record_now`) when the layered path would carry
        it there at once and alone: no link on the way is down, no shaper or observer
        hangs on the four clients, both queues pass frames through
        (`netdev.queue.NetQueue.passes_through`; the other peer's emptiness is also what
        `ready_except` asks) and `net_hub_forward` is off."""
        ports = self.hub.ports
        if len(ports) != 2:
            return False
        first, second = ports
        out = second if first is self else first
        dest = out.peer
        if (dest is None or sender.link_down or out.link_down
                or sender.shapers or self.shapers or out.shapers or dest.shapers
                or sender.filters or self.filters or out.filters or dest.filters
                or self.trace.net_hub_forward
                or not self.incoming_queue.passes_through()
                or not dest.incoming_queue.passes_through()):
            return False
        return dest.write_record_now(record)

    def _trace_forward(self, frames: int, length: int) -> None:
        to = ",".join(port.name for port in self.hub.ports if port is not self) or "-"
        self.trace.emit("net_hub_forward", hub=self.hub.id, port=self.name, to=to,
                        frames=frames, len=length)

    def peer_flushed(self) -> None:
        self.hub.wake(self)
