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

    def _trace_forward(self, frames: int, length: int) -> None:
        to = ",".join(port.name for port in self.hub.ports if port is not self) or "-"
        self.trace.emit("net_hub_forward", hub=self.hub.id, port=self.name, to=to,
                        frames=frames, len=length)

    def peer_flushed(self) -> None:
        self.hub.wake(self)
