"""Property tests of the queue contract: order, exactly-once callbacks, purge, no re-entrancy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from emu.testing import RecordingClient
from netdev.client import NetClient, connect_peers
from netdev.framing import RecordBatch
from netdev.queue import NetQueue

SENDERS = 3


class Receiver(RecordingClient):
    """Accepts or refuses according to a script; sometimes sends while receiving."""

    def __init__(self, decisions: list[int]) -> None:
        super().__init__("rx", "test")
        self.decisions = decisions
        self.step = 0
        self.depth = 0
        self.max_depth = 0
        self.reentrant_sender: NetClient | None = None
        self.reentrant_frames: list[bytes] = []

    def receive(self, frame: bytes) -> int:
        self.depth += 1
        self.max_depth = max(self.max_depth, self.depth)
        try:
            decision = self.decisions[self.step % len(self.decisions)] if self.decisions else 1
            self.step += 1
            if decision == 0:
                return 0
            taken = super().receive(frame)
            if decision == 2 and self.reentrant_sender is not None and frame[:1] != b"R":
                extra = b"R" + frame
                self.reentrant_frames.append(extra)
                self.reentrant_sender.send(extra)
            return taken
        finally:
            self.depth -= 1


op = st.one_of(
    st.tuples(st.just("send"), st.integers(0, SENDERS - 1), st.booleans()),
    st.tuples(st.just("batch"), st.integers(0, SENDERS - 1), st.integers(1, 4)),
    st.tuples(st.just("flush"), st.just(0), st.just(False)),
    st.tuples(st.just("purge"), st.integers(0, SENDERS - 1), st.just(False)),
)


@given(
    ops=st.lists(op, max_size=60),
    decisions=st.lists(st.sampled_from([0, 1, 1, 2]), max_size=12),
)
def test_queue_contract(ops: list[tuple[str, int, object]], decisions: list[int]) -> None:
    rx = Receiver(decisions)
    senders = [NetClient(f"s{i}", "test") for i in range(SENDERS)]
    connect_peers(senders[0], rx)
    rx.reentrant_sender = senders[0]
    sent: dict[int, list[bytes]] = {i: [] for i in range(SENDERS)}
    callbacks: dict[bytes, list[int]] = {}
    with_cb: set[bytes] = set()
    purged: set[bytes] = set()
    queue: NetQueue = rx.incoming_queue
    counter = 0

    def frame_for(i: int) -> bytes:
        nonlocal counter
        counter += 1
        return f"{i}:{counter}".encode()

    def callback_for(frames: list[bytes]):
        key = frames[0]
        with_cb.add(key)

        def done(_sender: NetClient, result: int) -> None:
            callbacks.setdefault(key, []).append(result)
            if result == 0:
                purged.update(f for f in frames if f not in rx.received)

        return done

    for kind, i, arg in ops:
        if kind == "send":
            frame = frame_for(i)
            sent[i].append(frame)
            cb = callback_for([frame]) if arg else None
            if i == 0:
                result = senders[0].send_async(frame, cb) if cb else senders[0].send(frame)
            else:
                result = queue.send(senders[i], frame, cb)
            if result != 0 and cb is not None:
                with_cb.discard(frame)
        elif kind == "batch":
            frames = [frame_for(i) for _ in range(int(arg))]
            sent[i].extend(frames)
            cb = callback_for(frames)
            taken = queue.send_batch(senders[i], RecordBatch.from_frames(frames), cb)
            if taken == len(frames):
                with_cb.discard(frames[0])
        elif kind == "flush":
            rx.flush_queued()
        else:
            # Whatever this sender has not had delivered yet is queued, so purged now.
            waiting = [f for f in sent[i] if f not in set(rx.received) and f not in purged]
            queue.purge(senders[i])
            purged.update(waiting)

    rx.decisions = []
    rx.reentrant_sender = None
    rx.flush_queued()

    assert len(queue) == 0
    assert rx.max_depth <= 1
    # Exactly one callback for every queued entry, none for immediate deliveries.
    assert set(callbacks) == with_cb
    assert all(len(results) == 1 for results in callbacks.values())
    # Everything sent was delivered once or purged, and each sender's order holds.
    delivered = [f for f in rx.received if not f.startswith(b"R")]
    assert len(delivered) == len(set(delivered))
    for i in range(SENDERS):
        mine = [f for f in delivered if f.startswith(f"{i}:".encode())]
        expected = [f for f in sent[i] if f not in purged]
        assert mine == expected
    # Re-entrant sends are delivered after the frame that triggered them.
    for extra in rx.reentrant_frames:
        if extra in rx.received:
            assert rx.received.index(extra) > rx.received.index(extra[1:])
