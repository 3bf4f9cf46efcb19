"""Frame-level hooks on a lab's links: watch the frames crossing a link as they cross it
(`FrameWatch`), and put a test's own client in the middle of a link (`Middlebox`).
QEMU's counterparts are netfilters (net/filter.c: a filter's receive_iov sees each
frame on its netdev and may hold, alter or drop it); a Middlebox is a NetClient pair
instead, so a test writes ordinary `receive` code and sends with ordinary `send` calls.

`Lab.on_frame`, `Lab.run_until_frame` and `Lab.splice` are the front doors
(docs/testing-kit.md, "Acting between two frames" and "Your own client on a link").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from emu.core.errors import UserError
from emu.core.timeline import Timeline
from netdev.client import Forward, NetClient, connect_peers
from netdev.net import Net

Direction = Literal["tx", "rx"]
FrameCallback = Callable[[bytes, Direction], object]
Side = Literal["nic", "net"]


class FrameWatch:
    """Calls `callback(frame, direction)` for every frame crossing `client`'s link: "tx"
    for frames `client` sends, "rx" for frames sent to it. It runs right after the frame
    was handed to the receiver (delivered, or queued at its door) and before the next
    frame crosses or any guest runs on, so what it does (take a link down, send a frame,
    note the time) happens exactly between two frames. It sits on the frame path as a
    `netdev.client.FrameShaper` that changes nothing; batches from a socket then cross
    frame by frame. Frames dropped before they cross (a link already down) are not seen."""

    def __init__(self, client: NetClient, callback: FrameCallback) -> None:
        self.client = client
        self.callback = callback
        client.shapers.append(self)

    def shape(self, frame: bytes, sent_by_owner: bool, forward: Forward) -> int:
        result = forward(frame)
        self.callback(bytes(frame), "tx" if sent_by_owner else "rx")
        return result

    def close(self) -> None:
        """Stop watching."""
        if self in self.client.shapers:
            self.client.shapers.remove(self)


class _End(NetClient):
    """One side of a Middlebox: what arrives here is the box's to handle."""

    def __init__(self, box: Middlebox, side: Side) -> None:
        super().__init__(f"{box.name}.{side}", "middlebox")
        self.info_str = f"test middlebox, {side} side"
        self._box = box
        self._side: Side = side

    def receive(self, frame: bytes) -> int:
        self._box.receive(bytes(frame), self._side)
        # The box took the frame, whatever it does with it; a 0 would make the sender
        # offer it again.
        return len(frame) or 1


class Middlebox:
    """A test's own client in the middle of a link: two NetClient ends back to back,
    `nic_side` facing the NIC (or whatever was the netdev's peer), `net_side` facing the
    netdev. Subclass it and override `receive(frame, came_from)`: the default passes
    every frame on unchanged. `send(frame, towards)` sends out of one side ("nic" or
    "net"); `timeline` (set by `Lab.splice`) schedules later work on the lab's time
    (`self.timeline.call_at(self.timeline.now_ns() + ns, fn)`), virtual in a
    deterministic lab. A box takes every frame at once: it does not pass backpressure on
    (a slow receiver's queue fills at the box's far side instead)."""

    def __init__(self, name: str = "box") -> None:
        self.name = name
        self.nic_side = _End(self, "nic")
        self.net_side = _End(self, "net")
        self.timeline: Timeline | None = None

    def receive(self, frame: bytes, came_from: Side) -> None:
        """A frame arrived on side `came_from`; pass it on, alter it, drop it or answer
        it. Default: pass it on to the other side."""
        self.send(frame, "net" if came_from == "nic" else "nic")

    def send(self, frame: bytes, towards: Side) -> int:
        """Send `frame` out of side `towards` ("nic": to the NIC, "net": to the netdev)."""
        end = self.nic_side if towards == "nic" else self.net_side
        return end.send(frame)


def splice(net: Net, client: NetClient, box: Middlebox, timeline: Timeline,
           to: NetClient | None = None) -> Middlebox:
    """Put `box` between `client` (a netdev, or a lab peer) and its peer (a NIC, a lab
    peer or another client): `box.nic_side` then faces that peer and `box.net_side`
    `client`. With `to`, join two free clients through the box instead: `box.net_side`
    faces `client`, `box.nic_side` faces `to`. The box's ends join `net`, so `info
    network` lists them."""
    if to is not None:
        for end in (client, to):
            if end.peer is not None:
                raise UserError(f"splice: '{end.name}' is already in use")
        connect_peers(box.nic_side, to)
    else:
        peer = client.peer
        if peer is None:
            raise UserError(f"splice: '{client.name}' has no peer yet: add the machine or "
                            "peer that uses it first, or join two netdevs with to=")
        client.peer = peer.peer = None
        connect_peers(peer, box.nic_side)
    connect_peers(box.net_side, client)
    box.timeline = timeline
    net.add_client(box.nic_side)
    net.add_client(box.net_side)
    return box
