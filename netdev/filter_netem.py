"""filter-netem — a lossy, slow, jittery link on one netdev, after Linux's netem qdisc
(`tc qdisc ... netem`). QEMU has no such filter; it sits where QEMU's netfilters sit
(net/filter.c: a NetFilterState on a netdev, seeing the tx and rx directions).

`-object filter-netem,id=ID,netdev=ID[,queue=all|rx|tx][,loss=P%][,duplicate=P%]
[,reorder=P%][,delay=T][,jitter=T][,corrupt=P%][,rate=BITS][,limit=N][,seed=N]`

Per frame, in this order, drawing from one `random.Random(seed)` in frame order (so a
seed and the same traffic in the same virtual time give the same fates every run):

- loss: the frame is dropped;
- duplicate: a copy follows it (both get the same fate from here on);
- corrupt: one random bit of one random byte is flipped (in every copy), and the frame
  becomes a `netdev.framing.BadFcsFrame`: a NIC's FCS check fails on it (CNTR1);
- reorder (with a delay): the frame goes at once, overtaking the delayed ones;
- delay ± jitter (uniform): the frame is held that long; with jitter, frames whose
  times cross come out in time order, as netem's time-sorted queue does;
- rate: the link carries `rate` bits per second, so a frame leaves only after the
  frames before it and its own bits (8 * length / rate) have gone.

Held frames (at most `limit`, netem's default 1000; more are dropped) are passed on at
their instant on the net's `emu.core.timeline.Timeline` — virtual time in a
deterministic lab, host time otherwise.
"""

from __future__ import annotations

import heapq
import random
import re
from dataclasses import dataclass, fields

from emu.core.errors import UserError
from emu.core.opts import Opts, shown
from emu.core.timeline import Timeline, TimerHandle
from netdev.client import Forward, NetClient
from netdev.framing import BadFcsFrame

NETEM_KEYS = frozenset({
    "qom-type", "id", "netdev", "queue", "loss", "duplicate", "reorder", "delay", "jitter",
    "corrupt", "rate", "limit", "seed", "status",
})
DEFAULT_LIMIT = 1000

_NUMBER = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_TIME = re.compile(_NUMBER + r"(ns|us|ms|s)?")
_TIME_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_PERCENT = re.compile(_NUMBER + r"%?")
_RATE = re.compile(_NUMBER + r"([kmg]?)(bit)?", re.IGNORECASE)
_RATE_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_time_ns(key: str, text: str) -> int:
    """`10ms`, `500us`, `2s`, `100ns`; a plain number is milliseconds (netem's unit)."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise UserError(f"Parameter '{key}' expects a time such as 10ms, 500us or 1s, "
                        f"not '{shown(text)}'")
    number, unit = match.groups()
    return round(float(number) * _TIME_UNITS[unit or "ms"])


def parse_percent(key: str, text: str) -> float:
    """`5%` or `5` (percent), 0 to 100; returned as a probability."""
    match = _PERCENT.fullmatch(text.strip())
    if match is None or float(match.group(1)) > 100:
        raise UserError(f"Parameter '{key}' expects a percentage from 0 to 100, "
                        f"not '{shown(text)}'")
    return float(match.group(1)) / 100


def parse_rate(text: str) -> int:
    """Bits per second: `1000000`, `100k`, `10M`, `1gbit` (decimal multiples)."""
    match = _RATE.fullmatch(text.strip())
    value = 0 if match is None else round(float(match.group(1))
                                          * _RATE_UNITS[match.group(2).lower()])
    if value <= 0:
        raise UserError(f"Parameter 'rate' expects bits per second such as 1000000, 100k "
                        f"or 10M, not '{shown(text)}'")
    return value


@dataclass
class NetemStats:
    """What the filter did, frame by frame (`info network` and the tests read it)."""

    passed: int = 0      # went on at once, neither delayed nor reordered
    dropped: int = 0     # loss, or more than `limit` held
    duplicated: int = 0  # copies made
    reordered: int = 0   # sent at once past delayed frames
    delayed: int = 0     # held for delay, jitter or rate
    corrupted: int = 0   # a bit flipped

    def describe(self) -> str:
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


@dataclass(frozen=True)
class NetemParams:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    delay_ns: int = 0
    jitter_ns: int = 0
    rate: int = 0  # bits per second; 0: no limit
    limit: int = DEFAULT_LIMIT
    seed: int = 0

    @classmethod
    def from_opts(cls, opts: Opts) -> NetemParams:
        def percent(key: str) -> float:
            text = opts.get(key)
            return 0.0 if text is None else parse_percent(key, text)

        def time_ns(key: str) -> int:
            text = opts.get(key)
            return 0 if text is None else parse_time_ns(key, text)

        rate_text = opts.get("rate")
        limit = opts.get_int("limit", DEFAULT_LIMIT)
        seed = opts.get_int("seed", 0)
        assert limit is not None and seed is not None
        if limit < 1:
            raise UserError(f"Parameter 'limit' expects a number of frames >= 1, not '{limit}'")
        return cls(loss=percent("loss"), duplicate=percent("duplicate"),
                   reorder=percent("reorder"), corrupt=percent("corrupt"),
                   delay_ns=time_ns("delay"), jitter_ns=time_ns("jitter"),
                   rate=0 if rate_text is None else parse_rate(rate_text),
                   limit=limit, seed=seed)


class HeldFrames:
    """Frames held until their instant on a Timeline, then passed on in (instant, arrival)
    order; one timer armed for the earliest (netem's time-sorted queue)."""

    def __init__(self, timeline: Timeline) -> None:
        self._timeline = timeline
        # (instant, arrival number, frame, where it goes): the arrival number keeps equal
        # instants in arrival order and the heap from comparing callables.
        self._held: list[tuple[int, int, bytes, Forward]] = []
        self._arrivals = 0
        self._timer: TimerHandle | None = None
        self._timer_ns = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, when_ns: int, frame: bytes, forward: Forward) -> None:
        self._arrivals += 1
        heapq.heappush(self._held, (when_ns, self._arrivals, frame, forward))
        self._arm()

    def _arm(self) -> None:
        if not self._held:
            return
        first = self._held[0][0]
        if self._timer is not None:
            if self._timer_ns <= first:
                return
            self._timer.cancel()
        self._timer_ns = first
        self._timer = self._timeline.call_at(first, self._release)

    def _release(self) -> None:
        self._timer = None
        now = self._timeline.now_ns()
        held = self._held
        # Bounded: each pass takes one held frame; a frame forwarded now goes on to the
        # next stage and cannot come back into this heap from inside forward.
        while held and held[0][0] <= now:
            _, _, frame, forward = heapq.heappop(held)
            forward(frame)
        self._arm()

    def clear(self) -> None:
        """Drop every held frame and the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held.clear()


class NetemFilter:
    """One filter-netem object: the fates of the frames crossing `netdev` in the chosen
    directions. Attach with `attach()`; `close()` drops what it still holds."""

    def __init__(self, name: str, netdev: NetClient, timeline: Timeline,
                 params: NetemParams, queue: str = "all") -> None:
        if queue not in ("all", "rx", "tx"):
            raise UserError("Parameter 'queue' expects 'all', 'rx' or 'tx'")
        self.name = name
        self.netdev = netdev
        self.params = params
        self.queue = queue
        self.stats = NetemStats()
        self._timeline = timeline
        self._want_tx = queue in ("all", "tx")
        self._want_rx = queue in ("all", "rx")
        self._random = random.Random(params.seed)
        self._held = HeldFrames(timeline)
        self._link_free_ns = 0

    def attach(self) -> None:
        self.netdev.shapers.append(self)

    @property
    def held(self) -> int:
        return len(self._held)

    def describe(self) -> str:
        """The line `info network` shows under the netdev."""
        return f"filter-netem {self.name}: queue={self.queue} {self.stats.describe()}"

    # -- per frame -------------------------------------------------------------------------

    def shape(self, frame: bytes, sent_by_owner: bool, forward: Forward) -> int:
        if not (self._want_tx if sent_by_owner else self._want_rx):
            return forward(frame)
        p = self.params
        draw = self._random.random
        if p.loss and draw() < p.loss:
            self.stats.dropped += 1
            self._trace("drop", frame, sent_by_owner)
            return len(frame) or 1
        copies = 1
        if p.duplicate and draw() < p.duplicate:
            copies = 2
            self.stats.duplicated += 1
            self._trace("duplicate", frame, sent_by_owner)
        if p.corrupt and draw() < p.corrupt and frame:
            data = bytearray(frame)
            data[self._random.randrange(len(data))] ^= 1 << self._random.randrange(8)
            frame = BadFcsFrame(data)
            self.stats.corrupted += 1
            self._trace("corrupt", frame, sent_by_owner)
        delay = p.delay_ns
        if p.jitter_ns:
            delay = max(0, delay + round((2 * draw() - 1) * p.jitter_ns))
        if p.reorder and p.delay_ns and draw() < p.reorder:
            self.stats.reordered += 1
            self._trace("reorder", frame, sent_by_owner)
            return self._now(frame, copies, forward)
        now = self._timeline.now_ns()
        when = now + delay
        if p.rate:
            when = max(when, self._link_free_ns) + len(frame) * 8 * 1_000_000_000 // p.rate
            self._link_free_ns = when
        if when <= now:
            self.stats.passed += 1
            return self._now(frame, copies, forward)
        for _ in range(copies):
            if len(self._held) >= p.limit:
                self.stats.dropped += 1
                self._trace("drop", frame, sent_by_owner)
                continue
            self._held.hold(when, frame, forward)
            self.stats.delayed += 1
            self._trace("delay", frame, sent_by_owner, when - now)
        return len(frame) or 1

    def _now(self, frame: bytes, copies: int, forward: Forward) -> int:
        result = forward(frame)
        for _ in range(copies - 1):
            forward(frame)
        return result

    def _trace(self, fate: str, frame: bytes, sent_by_owner: bool, delay_ns: int = 0) -> None:
        trace = self.netdev.trace
        if trace.net_filter_netem:
            trace.emit("net_filter_netem", filter=self.name, netdev=self.netdev.name,
                       dir="tx" if sent_by_owner else "rx", fate=fate, len=len(frame),
                       delay_ns=delay_ns)

    def close(self) -> None:
        """Detach and drop the held frames (the link is gone)."""
        self._held.clear()
        if self in self.netdev.shapers:
            self.netdev.shapers.remove(self)
