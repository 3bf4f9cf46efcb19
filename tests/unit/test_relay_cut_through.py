"""The relay's cut-through for a lone frame (`netdev.hub.HubPort.relay_record` to
`netdev.socket_stream.StreamSocket.write_record_now`) against the layered path it
stands for (`NetClient.send_batch`, both `NetQueue`s, the hub, `receive_batch`): the
same frames in the same order at both peers, the same queue states, the same trace
lines and the same frames seen by observers, whatever mix of lone records, bursts,
split records, stalled peers, filters, trace events and link changes comes; and each
condition that must send a frame the layered way does."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.core.trace import Trace
from netdev import socket_stream
from netdev.client import NetClient
from netdev.framing import RecordBatch
from netdev.hub import HubPort
from netdev.net import Net
from netdev.socket_stream import StreamSocket
from tests.netsupport import RecordReader, record

NAMES = ("a", "p0", "p1", "b")
SETTLE_TURNS = 8
DRAIN_ROUNDS = 200


class Observer:
    """A dump filter's stand-in: every frame it saw, with its direction."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bool]] = []

    def observe(self, frame: bytes, sent_by_owner: bool) -> None:
        self.seen.append((bytes(frame), sent_by_owner))

    def observe_batch(self, batch: RecordBatch, sent_by_owner: bool) -> None:
        self.seen.extend((frame, sent_by_owner) for frame in batch.frames())


class Rig:
    """Two fd= stream netdevs `a` and `b` on hub 0 (ports p0, p1), the far ends of their
    sockets (small send buffers, so output backs up), one trace into a buffer."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.loop = MainLoop()
        stack.callback(self.loop.close)
        self.net = Net(self.loop)
        stack.callback(self.net.close)
        self.peers: dict[str, socket.socket] = {}
        for side in "ab":
            ours, theirs = socket.socketpair()
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            theirs.setblocking(False)
            stack.enter_context(theirs)
            self.peers[side] = theirs
            self.add(f"socket,id={side},fd={ours.detach()}")
        self.add("hubport,id=p0,hubid=0,netdev=a")
        self.add("hubport,id=p1,hubid=0,netdev=b")
        self.clients = {name: self.net.find_netdev(name) for name in NAMES}
        self.log = io.StringIO()
        self.trace = Trace()
        self.trace.open_log(self.log)
        stack.callback(self.trace.close)
        self.trace.enable("net_socket_*")
        self.trace.attach(self.net)
        self.readers = {side: RecordReader() for side in "ab"}
        self.observers = {name: Observer() for name in NAMES}
        self.shapers = {name: PassOn() for name in NAMES}
        self.sent = {side: 0 for side in "ab"}

    def add(self, text: str) -> NetClient:
        return self.net.add_netdev(parse_opts(text, "type"))

    def settle(self) -> None:
        for _ in range(SETTLE_TURNS):
            self.loop.run_once(0.0)

    def frame(self, side: str, size: int) -> bytes:
        self.sent[side] += 1
        head = side.encode() + struct.pack(">I", self.sent[side])
        return head + bytes([self.sent[side] & 0xFF]) * max(0, size - len(head))

    def read(self, side: str) -> int:
        got = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                data = self.peers[side].recv(1 << 20)
                if not data:
                    break
                got += len(data)
                self.readers[side].feed(data)
        return got

    def state(self) -> tuple[Any, ...]:
        """What the rest of toynic can see of the relay now."""
        clients = self.clients.values()
        return (tuple(len(client.incoming_queue) for client in clients),
                tuple(client.receive_disabled for client in clients),
                tuple(client.link_down for client in clients),
                {side: list(reader.frames) for side, reader in self.readers.items()})


Step = tuple[Any, ...]

sizes = st.lists(st.sampled_from([1, 60, 590, 1514, 9000]), min_size=1, max_size=5)
traffic = st.one_of(
    st.tuples(st.just("send"), st.sampled_from("ab"),
              st.sampled_from(["lone", "lone", "burst", "split"]), sizes),
    st.tuples(st.just("read"), st.sampled_from("ab")))
condition = st.one_of(
    st.tuples(st.sampled_from(["filter", "shaper", "link"]), st.sampled_from(NAMES)),
    st.tuples(st.just("trace"), st.sampled_from(
        ["net_hub_forward", "net_queue_send_batch", "net_queue_*", "net_hub_*"])))


@st.composite
def scripts(draw: st.DrawFn) -> list[Step]:
    """Traffic, with stretches under one condition: it is switched on before the
    stretch and off after it."""
    script: list[Step] = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            switch = draw(condition)
            script += [switch, *draw(st.lists(traffic, min_size=1, max_size=4)), switch]
        else:
            script += draw(st.lists(traffic, min_size=1, max_size=4))
    return script


class PassOn:
    """A shaper that passes every frame on at once, noting it."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bool]] = []

    def shape(self, frame: bytes, sent_by_owner: bool, forward: Any) -> int:
        self.seen.append((bytes(frame), sent_by_owner))
        return forward(frame)


def play(script: list[Step], cut_through: bool) -> tuple[list[Any], str, dict[str, Any], int]:
    """Run `script` on a fresh relay; returns the state after each step and after the
    peers have read everything, the trace, what the observers saw, and how many frames
    took the cut-through."""
    taken = 0
    real = StreamSocket.write_record_now

    def counted(self: StreamSocket, data: memoryview) -> bool:
        nonlocal taken
        done = real(self, data)
        taken += done
        return done

    with contextlib.ExitStack() as stack:
        # The output refuses frames early, so queues fill and the hub holds frames back.
        stack.enter_context(mock.patch.object(socket_stream, "OUT_HIGH", 16384))
        stack.enter_context(mock.patch.object(socket_stream, "OUT_LOW", 8192))
        stack.enter_context(mock.patch.object(StreamSocket, "write_record_now", counted))
        if not cut_through:
            stack.enter_context(mock.patch.object(HubPort, "relay_record",
                                                  NetClient.relay_record))
        rig = Rig(stack)
        states = []
        filtered: set[str] = set()
        traced: set[str] = set()
        for step in script:
            kind = step[0]
            if kind == "send":
                _, side, how, lengths = step
                wire = [record(rig.frame(side, n)) for n in lengths]
                if how == "burst":
                    rig.peers[side].sendall(b"".join(wire))
                    rig.settle()
                for one in wire if how != "burst" else ():
                    cut = len(one) // 2 if how == "split" else len(one)
                    for piece in (one[:cut], one[cut:]):
                        if piece:
                            rig.peers[side].sendall(piece)
                            rig.settle()
            elif kind == "read":
                rig.read(step[1])
                rig.settle()
            elif kind == "filter":
                client = rig.clients[step[1]]
                observer = rig.observers[step[1]]
                if step[1] in filtered:
                    client.filters.remove(observer)
                else:
                    client.filters.append(observer)
                filtered ^= {step[1]}
            elif kind == "shaper":
                shapers = rig.clients[step[1]].shapers
                if shapers:
                    shapers.clear()
                else:
                    shapers.append(rig.shapers[step[1]])
            elif kind == "trace":
                rig.trace.set_events(step[1], step[1] not in traced)
                traced ^= {step[1]}
            else:
                name = step[1]
                rig.net.set_link(name, rig.clients[name].link_down)
            states.append(rig.state())
        idle = 0
        for _ in range(DRAIN_ROUNDS):
            rig.settle()
            idle = 0 if rig.read("a") + rig.read("b") else idle + 1
            if idle == 3:
                break
        states.append(rig.state())
        seen = {name: (rig.observers[name].seen, rig.shapers[name].seen) for name in NAMES}
        return states, rig.log.getvalue(), seen, taken


@settings(max_examples=100)
@given(scripts())
def test_the_cut_through_is_the_layered_path(script: list[Step]) -> None:
    layered = play(script, cut_through=False)
    fast = play(script, cut_through=True)
    assert layered[3] == 0
    assert fast[:3] == layered[:3]
    # Nothing lost or reordered: each peer gets the other's frames, in order, with
    # gaps only where a link on the way was down.
    final = fast[0][-1][3]
    for side, other in (("a", "b"), ("b", "a")):
        numbers = [struct.unpack(">I", frame[1:5])[0] for frame in final[side]]
        assert all(frame[:1] == other.encode() for frame in final[side])
        assert numbers == sorted(set(numbers))
        if not any(step[0] == "link" for step in script):
            assert len(numbers) == sum(len(step[3]) for step in script
                                       if step[0] == "send" and step[1] == other)


def lone_ping(rig: Rig, size: int = 60) -> list[bytes]:
    """Peer a sends one record; returns what peer b reads after the relay's turns."""
    before = len(rig.readers["b"].frames)
    rig.peers["a"].sendall(record(rig.frame("a", size)))
    rig.settle()
    rig.read("b")
    return rig.readers["b"].frames[before:]


@pytest.fixture
def rig() -> Iterator[Rig]:
    with contextlib.ExitStack() as stack:
        yield Rig(stack)


def spy(rig: Rig) -> list[int]:
    """Count the cut-through writes of netdev b."""
    calls: list[int] = []
    b = rig.clients["b"]
    real = b.write_record_now

    def counted(data: memoryview) -> bool:
        done = real(data)
        calls.append(done)
        return done

    b.write_record_now = counted  # type: ignore[method-assign]
    return calls


def test_a_lone_record_takes_the_cut_through(rig: Rig) -> None:
    calls = spy(rig)
    assert len(lone_ping(rig)) == 1
    assert calls == [True]
    log = rig.log.getvalue().splitlines()
    assert [line.split()[0] for line in log] == ["net_socket_read", "net_socket_write"]


def set_hub_forward(rig: Rig) -> None:
    rig.trace.enable("net_hub_forward")


def set_queue_trace(rig: Rig) -> None:
    rig.trace.enable("net_queue_send_batch")


def set_shaper(rig: Rig, name: str) -> None:
    rig.clients[name].shapers.append(PassOn())


def third_port(rig: Rig) -> None:
    rig.add("hubport,id=p2,hubid=0")


def b_output_waiting(rig: Rig) -> None:
    b = rig.clients["b"]
    assert isinstance(b, StreamSocket)
    b.receive(b"x" * 60)  # written at once, in a turn of its own
    b.receive(b"y" * 60)  # same turn: waits in the output for the loop


@pytest.mark.parametrize("setup", [
    *[(f"filter on {name}", lambda rig, n=name: rig.clients[n].filters.append(Observer()))
      for name in NAMES],
    *[(f"shaper on {name}", lambda rig, n=name: set_shaper(rig, n)) for name in NAMES],
    ("net_hub_forward traced", set_hub_forward),
    ("net_queue_send_batch traced", set_queue_trace),
    ("a hub of three ports", third_port),
    ("b has output waiting", b_output_waiting),
], ids=lambda setup: setup[0])
def test_what_makes_a_lone_record_take_the_layered_path(rig: Rig, setup: Any) -> None:
    setup[1](rig)
    calls = spy(rig)
    frames = lone_ping(rig)
    assert not any(calls)
    assert frames[-1] == rig.readers["b"].frames[-1] and frames[-1][:1] == b"a"


@pytest.mark.parametrize("name", NAMES)
def test_a_link_down_on_the_way_drops_the_frame_as_the_layered_path_does(
        rig: Rig, name: str) -> None:
    rig.net.set_link(name, False)
    calls = spy(rig)
    assert lone_ping(rig) == []
    assert not any(calls)
    rig.net.set_link(name, True)
    assert len(lone_ping(rig)) == 1 and calls[-1]


def test_a_queued_frame_is_never_overtaken(rig: Rig) -> None:
    """b's peer does not read: b's output fills, frames wait in b's queue and the hub
    holds a's; a lone record that comes meanwhile queues behind them."""
    b = rig.clients["b"]
    with mock.patch.object(socket_stream, "OUT_HIGH", 8192), \
            mock.patch.object(socket_stream, "OUT_LOW", 4096):
        calls = spy(rig)
        for _ in range(2):
            rig.peers["a"].sendall(b"".join(record(rig.frame("a", 1514)) for _ in range(20)))
            rig.settle()
        assert len(rig.clients["p0"].incoming_queue) or len(b.incoming_queue)
        rig.peers["a"].sendall(record(rig.frame("a", 60)))
        rig.settle()
        assert not any(calls)
        for _ in range(DRAIN_ROUNDS):
            rig.read("b")
            rig.settle()
            if len(rig.readers["b"].frames) == 41:
                break
    numbers = [struct.unpack(">I", frame[1:5])[0] for frame in rig.readers["b"].frames]
    assert numbers == list(range(1, 42))


def test_a_short_cut_through_write_keeps_its_own_copy_of_the_rest(rig: Rig) -> None:
    """The record is a view of a's receive buffer, which the next read overwrites: what
    the kernel did not take must be copied before that."""
    calls = spy(rig)
    big = rig.frame("a", 60000)
    rig.peers["a"].sendall(record(big))
    rig.settle()
    assert calls == [True]
    a = rig.clients["a"]
    assert isinstance(a, StreamSocket)
    a._inbuf[:70000] = bytes(70000)  # what a later read would do to it
    for _ in range(DRAIN_ROUNDS):
        rig.read("b")
        rig.settle()
        if rig.readers["b"].frames:
            break
    assert rig.readers["b"].frames == [big]
