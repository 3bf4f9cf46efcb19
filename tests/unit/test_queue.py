"""NetQueue / NetClient contract (netdev/queue.py docstring), one rule per test."""

from __future__ import annotations

import pytest

from emu.core.errors import UserError
from emu.testing import RecordingClient
from netdev.client import NetClient, connect_peers
from netdev.framing import RecordBatch
from netdev.queue import MAX_QUEUED


class Sink(RecordingClient):
    """A receiver whose willingness the test controls, each way apart: `accepting`
    (receive says "not now"), `ready` (can_receive) and `result` (receive's answer)."""

    def __init__(self, name: str = "sink") -> None:
        super().__init__(name, "test")
        self.ready = True
        self.result: int | None = None

    def can_receive(self) -> bool:
        return self.ready

    def receive(self, frame: bytes) -> int:
        taken = super().receive(frame)
        return taken if self.result is None or not taken else self.result


def pair() -> tuple[NetClient, Sink]:
    src, sink = NetClient("src", "test"), Sink()
    connect_peers(src, sink)
    return src, sink


def test_immediate_delivery_returns_receiver_result_and_no_callback() -> None:
    src, sink = pair()
    calls: list[int] = []
    assert src.send_async(b"abc", lambda _c, n: calls.append(n)) == 3
    assert sink.received == [b"abc"]
    assert calls == []


def test_refused_frame_stays_at_head_and_is_reoffered_first() -> None:
    src, sink = pair()
    sink.accepting = False
    calls: list[int] = []
    assert src.send_async(b"one", lambda _c, n: calls.append(n)) == 0
    assert sink.receive_disabled
    assert src.send(b"two") == 0
    assert len(sink.incoming_queue) == 2
    sink.accepting = True
    sink.flush_queued()
    assert sink.received == [b"one", b"two"]
    assert calls == [3]
    assert not sink.receive_disabled
    assert len(sink.incoming_queue) == 0


def test_can_receive_false_queues_and_new_frames_never_overtake() -> None:
    src, sink = pair()
    sink.ready = False
    src.send(b"1")
    sink.ready = True
    # The queue is not empty, so a new frame waits behind the old one.
    assert src.send(b"2") == 0
    assert sink.received == []
    sink.flush_queued()
    assert sink.received == [b"1", b"2"]


def test_purge_fires_callbacks_with_zero_exactly_once() -> None:
    src, sink = pair()
    sink.accepting = False
    calls: list[tuple[NetClient, int]] = []
    src.send_async(b"a", lambda c, n: calls.append((c, n)))
    src.send_async(b"b", lambda c, n: calls.append((c, n)))
    src.purge_queued()
    assert calls == [(src, 0), (src, 0)]
    sink.accepting = True
    sink.flush_queued()
    assert sink.received == []
    assert calls == [(src, 0), (src, 0)]


def test_purge_keeps_other_senders_frames() -> None:
    sink = Sink()
    a, b = NetClient("a", "t"), NetClient("b", "t")
    connect_peers(a, sink)
    sink.accepting = False
    a.send(b"from-a")
    sink.incoming_queue.send(b, b"from-b", None)
    a.purge_queued()
    sink.accepting = True
    sink.flush_queued()
    assert sink.received == [b"from-b"]


def test_callbackless_frames_dropped_at_limit_callback_frames_kept() -> None:
    src, sink = pair()
    sink.ready = False
    for i in range(MAX_QUEUED + 5):
        src.send(i.to_bytes(4, "big"))
    assert len(sink.incoming_queue) == MAX_QUEUED
    calls: list[int] = []
    src.send_async(b"kept", lambda _c, n: calls.append(n))
    assert len(sink.incoming_queue) == MAX_QUEUED + 1
    sink.ready = True
    sink.flush_queued()
    assert len(sink.received) == MAX_QUEUED + 1
    assert sink.received[-1] == b"kept"
    assert calls == [4]


def test_delivery_is_not_reentrant() -> None:
    class Echo(Sink):
        def __init__(self) -> None:
            super().__init__("echo")
            self.depth = 0
            self.max_depth = 0
            self.sender: NetClient | None = None

        def receive(self, frame: bytes) -> int:
            self.depth += 1
            self.max_depth = max(self.max_depth, self.depth)
            if frame == b"first" and self.sender is not None:
                # A frame produced while receiving must be delivered after this returns.
                assert self.sender.send(b"second") == 0
                assert self.received == []
            self.received.append(frame)
            self.depth -= 1
            return len(frame)

    src, echo = NetClient("src", "t"), Echo()
    connect_peers(src, echo)
    echo.sender = src
    src.send(b"first")
    assert echo.received == [b"first", b"second"]
    assert echo.max_depth == 1


def test_link_down_sender_drops_and_reports_success() -> None:
    src, sink = pair()
    src.link_down = True
    assert src.send(b"xyz") == 3
    assert sink.received == []


def test_link_down_receiver_drops_and_reports_success() -> None:
    src, sink = pair()
    sink.link_down = True
    calls: list[int] = []
    assert src.send_async(b"xyz", lambda _c, n: calls.append(n)) == 3
    assert sink.received == []
    assert calls == []


def test_no_peer_drops_and_reports_success() -> None:
    lonely = NetClient("lonely", "t")
    assert lonely.send(b"abcd") == 4
    assert lonely.send_batch(RecordBatch.from_frames([b"a", b"b"])) == 2


def test_negative_result_drops_frame_and_queue_moves_on() -> None:
    src, sink = pair()
    sink.result = -1
    assert src.send(b"bad") == -1
    assert not sink.receive_disabled
    assert len(sink.incoming_queue) == 0


def test_batch_partially_taken_rest_queued_with_one_callback() -> None:
    class Two(Sink):
        def receive(self, frame: bytes) -> int:
            if len(self.received) >= self.limit:
                return 0
            self.received.append(frame)
            return len(frame)

    src, sink = NetClient("src", "t"), Two()
    sink.limit = 2
    connect_peers(src, sink)
    calls: list[int] = []
    frames = [bytes([i]) * (i + 1) for i in range(5)]
    taken = src.send_batch(RecordBatch.from_frames(frames), lambda _c, n: calls.append(n))
    assert taken == 2
    assert len(sink.incoming_queue) == 3
    sink.limit = 3
    sink.flush_queued()
    assert calls == []
    sink.limit = 5
    sink.flush_queued()
    assert sink.received == frames
    assert len(calls) == 1


def test_connect_peers_rejects_already_peered() -> None:
    a, b, c = NetClient("a", "t"), NetClient("b", "t"), NetClient("c", "t")
    connect_peers(a, b)
    with pytest.raises(UserError, match="already in use"):
        connect_peers(c, b)
    assert c.peer is None
