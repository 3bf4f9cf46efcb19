"""filter-replay — QEMU's net/filter-replay.c (object `filter-replay`) with the netdev side
of replay/replay-net.c: `-object filter-replay,id=ID,netdev=ID` marks the netdev whose
incoming frames `-icount rr=record|replay` records or replays.

The filter is a shaper that sits last on its netdev, so it sees each frame as it goes on
towards the NIC (after any `filter-netem`). Recording, it hands every such frame to the
journal and passes it on. Replaying, it drops every frame from the live side (there
should be none: a replayed host netdev is a `ReplayedNetdev`, which opens no socket) and
`inject` sends the recorded frames on from its own stage: to the observers (pcap) and the
NIC's queue, exactly as they went the first time. Frames the NIC sends pass through.
Without record/replay the filter passes everything, as in QEMU.
"""

from __future__ import annotations

from typing import Protocol

from emu.core.opts import Opts, check_id
from netdev.client import Forward, NetClient

REPLAY_KEYS = frozenset({"qom-type", "id", "netdev", "status"})


class FrameJournal(Protocol):
    """Where a recording filter reports the frames it passes towards the NIC."""

    def frame(self, netdev: str, frame: bytes) -> None: ...


class ReplayFilter:
    """One `-object filter-replay` on one netdev."""

    def __init__(self, name: str, netdev: NetClient) -> None:
        self.name = name
        self.netdev = netdev
        self.journal: FrameJournal | None = None
        self.replaying = False
        self.dropped_live = 0

    @classmethod
    def from_opts(cls, opts: Opts, netdev: NetClient) -> ReplayFilter:
        opts.check_keys(REPLAY_KEYS)
        return cls(check_id(opts.require("id")), netdev)

    def attach(self) -> None:
        self.netdev.shapers.append(self)

    def keep_last(self) -> None:
        """Move behind shapers added after this filter."""
        shapers = self.netdev.shapers
        if self in shapers and shapers[-1] is not self:
            shapers.remove(self)
            shapers.append(self)

    def shape(self, frame: bytes, sent_by_owner: bool, forward: Forward) -> int:
        if not sent_by_owner:
            return forward(frame)
        if self.replaying:
            self.dropped_live += 1
            return len(frame) or 1
        if self.journal is not None:
            self.journal.frame(self.netdev.name, bytes(frame))
        return forward(frame)

    def inject(self, frame: bytes) -> None:
        """Replay: send a recorded frame on from this filter's place on the path."""
        netdev = self.netdev
        stage = netdev.shapers.index(self) + 1 if self in netdev.shapers else 0
        netdev._send_shaped(frame, None, stage)

    def describe(self) -> str:
        mode = "replaying" if self.replaying else "recording" if self.journal else "idle"
        return f"filter-replay {self.name}: {mode}"


class ReplayedNetdev(NetClient):
    """Stands in for a host netdev under `rr=replay`: same name and type, no socket. Its
    frames come from the rrfile; the frames the NIC sends it are counted and dropped."""

    def __init__(self, name: str, model: str) -> None:
        super().__init__(name, model)
        self.info_str = "replayed from the rrfile (no host connection)"
        self.dropped = 0

    def receive(self, frame: bytes) -> int:
        self.dropped += 1
        return len(frame) or 1
