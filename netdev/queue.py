"""NetQueue — QEMU's net/queue.c: the frames waiting to be delivered to one client.

Every NetClient owns one NetQueue holding the frames destined *to* it (its
"incoming queue"). Senders reach it through `NetClient.send`, `send_async` and
`send_batch`. The contract, which every client and test relies on:

1. Delivery calls the receiver's `receive(frame)` (or `receive_batch(batch)`):
   - a result > 0 means consumed, < 0 means dropped; either way the frame is done;
   - a result of 0 means "not now": the frame stays at the head of the queue, the
     receiver's `receive_disabled` flag is set, and nothing more is offered until the
     receiver calls `flush_queued()`, which re-offers exactly that frame first.
   `receive_batch` returns how many frames it took (consumed or dropped) from the
   front; fewer than all means "not now" for the rest, which stay at the head.
2. A frame is queued instead of delivered when the receiver is disabled, its
   `can_receive()` is false, the queue already holds frames (so nothing overtakes a
   waiting frame), or the queue is delivering right now. Delivery is therefore never
   re-entrant: a frame sent from inside a `receive()` is queued and delivered after the
   current delivery returns.
3. `send_async`/`send_batch` with a callback: the callback fires exactly once per queued
   entry, when it is finally delivered (with the receiver's result; the number of frames
   for a batch) or purged (with 0). A frame delivered at once gets no callback.
4. Frames without a callback are dropped (the sender still sees 0) once the queue holds
   10000 frames; frames with a callback are always queued, because their sender stops
   producing until the callback fires.
5. Order per sender is preserved (the queue is FIFO and a refused head stays first).
6. A receiver whose `link_down` is set drops frames at delivery, reporting success.
   (A sender with `link_down` or without a peer drops at send time; see client.py.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from emu.core.trace import DISABLED, Trace
from netdev.framing import RecordBatch

if TYPE_CHECKING:
    from netdev.client import NetClient

SentCallback = Callable[["NetClient", int], None]
Payload = bytes | RecordBatch

MAX_QUEUED = 10000


class _Entry:
    __slots__ = ("callback", "count", "payload", "sender")

    def __init__(
        self, sender: NetClient, payload: Payload, callback: SentCallback | None, count: int
    ) -> None:
        self.sender = sender
        self.payload = payload
        self.callback = callback
        self.count = count


class NetQueue:
    """FIFO of frames destined to `owner`, with QEMU's queue_send/flush/purge rules."""

    def __init__(self, owner: NetClient) -> None:
        self._owner = owner
        self._entries: deque[_Entry] = deque()
        self._frames = 0
        self._delivering = False
        self.trace: Trace = DISABLED

    def __len__(self) -> int:
        """Number of frames waiting (a queued batch counts each of its frames)."""
        return self._frames

    @property
    def delivering(self) -> bool:
        return self._delivering

    def passes_through(self) -> bool:
        """True when a frame sent now would reach the owner's `receive_batch` at once and
        leave nothing behind in this queue but the owner's own work: nothing waits or is
        being delivered, the owner takes frames and its link is up, and no
        `net_queue_send_batch` line would be written. A cut-through (`HubPort.relay_record`)
        that finds this true for every queue on its way may skip them."""
        owner = self._owner
        return not (self._delivering or self._entries or owner.receive_disabled
                    or owner.link_down or self.trace.net_queue_send_batch)

    def _can_deliver_now(self) -> bool:
        owner = self._owner
        return (
            not self._delivering
            and not self._entries
            and not owner.receive_disabled
            and owner.can_receive()
        )

    def send(self, sender: NetClient, frame: bytes, callback: SentCallback | None) -> int:
        """Deliver `frame` or queue it; QEMU's qemu_net_queue_send. Returns the result or 0."""
        if not self._can_deliver_now():
            self._append(sender, frame, callback, 1)
            return 0
        self._delivering = True
        try:
            result = self._deliver_frame(frame)
        finally:
            self._delivering = False
        if result == 0:
            self._append(sender, frame, callback, 1, "refused")
            return 0
        if self.trace.net_queue_send:
            self.trace.emit("net_queue_send", sender=sender.name, receiver=self._owner.name,
                            len=len(frame), result=result)
        if self._entries:
            self.flush()
        return result

    def send_batch(
        self, sender: NetClient, batch: RecordBatch, callback: SentCallback | None
    ) -> int:
        """Deliver what the receiver takes of `batch` now; queue the rest. Returns frames taken."""
        owner = self._owner
        # _can_deliver_now and _deliver_batch, written out: every relayed frame comes here.
        if (self._delivering or self._entries or owner.receive_disabled
                or not owner.can_receive()):
            self._append(sender, batch, callback, batch.count)
            return 0
        if owner.link_down:
            if self.trace.net_queue_drop:
                self._trace_receiver_drop(batch.count, "receiver_link_down")
            taken = batch.count
        else:
            self._delivering = True
            try:
                taken = owner.receive_batch(batch)
            finally:
                self._delivering = False
            if taken < batch.count:
                owner.receive_disabled = True
        if self.trace.net_queue_send_batch:
            self.trace.emit("net_queue_send_batch", sender=sender.name,
                            receiver=self._owner.name, frames=batch.count,
                            bytes=len(batch.data), taken=taken)
        if taken < batch.count:
            self._append(sender, batch.tail(taken), callback, batch.count - taken, "refused")
            return taken
        if self._entries:
            self.flush()
        return taken

    def _append(
        self,
        sender: NetClient,
        payload: Payload,
        callback: SentCallback | None,
        count: int,
        reason: str | None = None,
    ) -> None:
        if callback is None and self._frames >= MAX_QUEUED:
            if self.trace.net_queue_drop:
                self.trace.emit("net_queue_drop", sender=sender.name, receiver=self._owner.name,
                                frames=count, reason="queue_full")
            return
        if self.trace.net_queue_append:
            self.trace.emit("net_queue_append", sender=sender.name, receiver=self._owner.name,
                            frames=count, queued=self._frames + count,
                            reason=reason or self._waiting_reason())
        if not isinstance(payload, bytes | RecordBatch):
            payload = bytes(payload)
        self._entries.append(_Entry(sender, payload, callback, count))
        self._frames += count

    def _waiting_reason(self) -> str:
        """Why `_can_deliver_now` said no (only asked when tracing)."""
        owner = self._owner
        if self._delivering:
            return "busy"
        if self._entries:
            return "backlog"
        if owner.receive_disabled:
            return "disabled"
        return "cannot_receive"

    def _deliver_frame(self, frame: bytes) -> int:
        owner = self._owner
        if owner.link_down:
            if self.trace.net_queue_drop:
                self._trace_receiver_drop(1, "receiver_link_down")
            return len(frame) or 1
        if owner.receive_disabled:
            return 0
        result = owner.receive(frame)
        if result <= 0:
            if result == 0:
                owner.receive_disabled = True
            elif self.trace.net_queue_drop:
                self._trace_receiver_drop(1, "receiver_dropped")
        return result

    def _trace_receiver_drop(self, frames: int, reason: str) -> None:
        self.trace.emit("net_queue_drop", sender="-", receiver=self._owner.name, frames=frames,
                        reason=reason)

    def _deliver_batch(self, batch: RecordBatch) -> int:
        owner = self._owner
        if owner.link_down:
            if self.trace.net_queue_drop:
                self._trace_receiver_drop(batch.count, "receiver_link_down")
            return batch.count
        if owner.receive_disabled:
            return 0
        taken = owner.receive_batch(batch)
        if taken < batch.count:
            owner.receive_disabled = True
        return taken

    def flush(self) -> bool:
        """Offer queued frames in order until the receiver refuses one; True when empty."""
        if self._delivering:
            return False
        entries = self._entries
        waiting = self._frames
        while entries:
            entry = entries[0]
            payload = entry.payload
            self._delivering = True
            try:
                if not isinstance(payload, RecordBatch):
                    result = self._deliver_frame(payload)
                    refused = result == 0
                else:
                    result = self._deliver_batch(payload)
                    refused = result < entry.count
                    if refused and result > 0:
                        entry.payload = payload.tail(result)
                        entry.count -= result
                        self._frames -= result
            finally:
                self._delivering = False
            if refused:
                break
            entries.popleft()
            self._frames -= entry.count
            if entry.callback is not None:
                entry.callback(entry.sender, result)
        if waiting and self.trace.net_queue_flush:
            self.trace.emit("net_queue_flush", receiver=self._owner.name,
                            delivered=max(0, waiting - self._frames), queued=self._frames)
        return not entries

    def purge(self, sender: NetClient) -> None:
        """Drop every frame queued by `sender`; each callback fires with 0."""
        kept: deque[_Entry] = deque()
        purged: list[_Entry] = []
        for entry in self._entries:
            (purged if entry.sender is sender else kept).append(entry)
        if not purged:
            return
        self._entries = kept
        self._frames = sum(entry.count for entry in kept)
        if self.trace.net_queue_purge:
            self.trace.emit("net_queue_purge", receiver=self._owner.name, sender=sender.name,
                            frames=sum(entry.count for entry in purged))
        for entry in purged:
            if entry.callback is not None:
                entry.callback(entry.sender, 0)
