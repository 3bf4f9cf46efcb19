"""filter-netem (netdev.filter_netem): each knob's effect, determinism per seed, the tx/rx
choice, counters in `info network`, trace events, and one-line option errors."""

from __future__ import annotations

import heapq
import io
import logging
from collections.abc import Callable

import pytest

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.core.trace import Trace
from emu.testing import Lab, RecordingClient, ethernet
from netdev.client import connect_peers
from netdev.filter_netem import NetemFilter, NetemParams, parse_rate, parse_time_ns
from netdev.net import Net
from tests.netsupport import run_toynic

pytestmark = pytest.mark.timeout(60)

DST = bytes.fromhex("020000000002")
SRC = bytes.fromhex("020000000001")


class ManualTimeline:
    """A Timeline the test moves by hand (the protocol a deterministic lab implements)."""

    def __init__(self) -> None:
        self.now = 0
        self._timers: list[tuple[int, int, Callable[[], object], list[bool]]] = []
        self._count = 0

    def now_ns(self) -> int:
        return self.now

    def call_at(self, when_ns: int, fn: Callable[[], object]) -> _Handle:
        cancelled = [False]
        self._count += 1
        heapq.heappush(self._timers, (when_ns, self._count, fn, cancelled))
        return _Handle(cancelled)

    def advance(self, to_ns: int) -> None:
        # Bounded: each pass pops one timer; callbacks only add timers later than now.
        while self._timers and self._timers[0][0] <= to_ns:
            when, _, fn, cancelled = heapq.heappop(self._timers)
            self.now = when
            if not cancelled[0]:
                fn()
        self.now = to_ns


class _Handle:
    def __init__(self, cancelled: list[bool]) -> None:
        self._cancelled = cancelled

    def cancel(self) -> None:
        self._cancelled[0] = True


def frame(n: int, size: int = 60) -> bytes:
    return ethernet(DST, SRC, 0x88B5, n.to_bytes(2, "big").ljust(size - 14, b"\0"))


def link(text: str, timeline: ManualTimeline | None = None,
         ) -> tuple[RecordingClient, RecordingClient, NetemFilter, ManualTimeline]:
    """sender -> netdev (filtered, the frames are its tx direction) -> receiver."""
    timeline = timeline or ManualTimeline()
    netdev, receiver = RecordingClient("n0"), RecordingClient("rx")
    connect_peers(netdev, receiver)
    opts = parse_opts(text, "qom-type")
    netem = NetemFilter("f0", netdev, timeline, NetemParams.from_opts(opts),
                        queue=opts.get("queue", "all") or "all")
    netem.attach()
    return netdev, receiver, netem, timeline


def test_no_knobs_pass_every_frame_unchanged_at_once() -> None:
    sender, receiver, netem, _ = link("filter-netem")
    for n in range(5):
        assert sender.send(frame(n)) > 0
    assert receiver.received == [frame(n) for n in range(5)]
    assert netem.stats.passed == 5 and netem.stats.dropped == 0


def test_loss_100_drops_all_and_loss_0_none() -> None:
    sender, receiver, netem, _ = link("filter-netem,loss=100%")
    for n in range(10):
        assert sender.send(frame(n)) > 0  # the sender sees its frame taken
    assert receiver.received == []
    assert netem.stats.dropped == 10


def test_loss_rate_is_near_the_percentage_and_fixed_by_the_seed() -> None:
    def survivors(seed: int) -> list[bytes]:
        sender, receiver, _, _ = link(f"filter-netem,loss=30%,seed={seed}")
        for n in range(1000):
            sender.send(frame(n))
        return receiver.received

    first = survivors(7)
    assert 600 <= len(first) <= 800
    assert survivors(7) == first
    assert survivors(8) != first


def test_delay_holds_each_frame_exactly_that_long() -> None:
    sender, receiver, netem, timeline = link("filter-netem,delay=10ms")
    sender.send(frame(0))
    timeline.advance(4_000_000)
    sender.send(frame(1))
    assert receiver.received == [] and netem.held == 2
    timeline.advance(9_999_999)
    assert receiver.received == []
    timeline.advance(10_000_000)
    assert receiver.received == [frame(0)]
    timeline.advance(14_000_000)
    assert receiver.received == [frame(0), frame(1)]
    assert netem.stats.delayed == 2 and netem.held == 0


def test_duplicate_100_delivers_two_copies() -> None:
    sender, receiver, netem, _ = link("filter-netem,duplicate=100")
    sender.send(frame(1))
    assert receiver.received == [frame(1), frame(1)]
    assert netem.stats.duplicated == 1


def test_corrupt_flips_exactly_one_bit() -> None:
    sender, receiver, netem, _ = link("filter-netem,corrupt=100%,seed=3")
    for n in range(20):
        sender.send(frame(n))
    for n, got in enumerate(receiver.received):
        diff = int.from_bytes(got, "big") ^ int.from_bytes(frame(n), "big")
        assert diff.bit_count() == 1
    assert netem.stats.corrupted == 20


def test_reorder_sends_some_frames_past_the_delayed_ones() -> None:
    sender, receiver, netem, timeline = link("filter-netem,delay=10ms,reorder=50%,seed=1")
    for n in range(20):
        sender.send(frame(n))
    at_once = list(receiver.received)
    timeline.advance(10_000_000)
    assert sorted(receiver.received) == sorted(frame(n) for n in range(20))
    assert at_once and len(at_once) == netem.stats.reordered
    assert receiver.received != [frame(n) for n in range(20)]
    assert netem.stats.delayed == 20 - len(at_once)


def test_jitter_delivers_in_time_order_within_the_bounds() -> None:
    sender, receiver, _, timeline = link("filter-netem,delay=10ms,jitter=5ms,seed=2")
    for n in range(50):
        sender.send(frame(n))
    timeline.advance(4_999_999)
    assert receiver.received == []
    timeline.advance(15_000_000)
    assert len(receiver.received) == 50
    assert receiver.received != [frame(n) for n in range(50)]  # jitter reorders


def test_rate_serializes_frames_one_after_another() -> None:
    # 8000 bit/s: a 100-byte frame takes 100 ms on the wire.
    sender, receiver, _, timeline = link("filter-netem,rate=8k")
    for n in range(3):
        sender.send(frame(n, 100))
    timeline.advance(99_999_999)
    assert receiver.received == []
    timeline.advance(100_000_000)
    assert len(receiver.received) == 1
    timeline.advance(299_999_999)
    assert len(receiver.received) == 2
    timeline.advance(300_000_000)
    assert receiver.received == [frame(n, 100) for n in range(3)]


def test_limit_drops_frames_beyond_the_held_count() -> None:
    sender, receiver, netem, timeline = link("filter-netem,delay=1s,limit=3")
    for n in range(5):
        sender.send(frame(n))
    timeline.advance(1_000_000_000)
    assert receiver.received == [frame(n) for n in range(3)]
    assert netem.stats.dropped == 2


def test_queue_rx_leaves_the_tx_direction_alone() -> None:
    sender, receiver, netem, _ = link("filter-netem,loss=100%,queue=rx")
    sender.send(frame(0))  # the netdev sends: its tx direction
    receiver.send(frame(1))  # to the netdev: rx
    assert receiver.received == [frame(0)]
    assert sender.received == []
    assert netem.stats.passed == 0 and netem.stats.dropped == 1


def test_a_held_frame_meets_the_link_as_it_is_when_released() -> None:
    sender, receiver, _, timeline = link("filter-netem,delay=5ms")
    sender.send(frame(0))
    sender.link_down = True
    timeline.advance(5_000_000)
    assert receiver.received == []


def test_close_drops_held_frames_and_detaches() -> None:
    sender, receiver, netem, timeline = link("filter-netem,delay=5ms")
    sender.send(frame(0))
    netem.close()
    timeline.advance(10_000_000)
    assert receiver.received == [] and sender.shapers == []
    sender.send(frame(1))
    assert receiver.received == [frame(1)]


def test_times_and_rates_parse_with_units() -> None:
    assert parse_time_ns("delay", "10ms") == 10_000_000
    assert parse_time_ns("delay", "10") == 10_000_000
    assert parse_time_ns("delay", "500us") == 500_000
    assert parse_time_ns("delay", "1.5s") == 1_500_000_000
    assert parse_time_ns("delay", "250ns") == 250
    assert parse_rate("1000000") == 1_000_000
    assert parse_rate("10M") == 10_000_000
    assert parse_rate("100kbit") == 100_000


@pytest.mark.parametrize(("text", "message"), [
    ("loss=101%", "Parameter 'loss' expects a percentage from 0 to 100, not '101%'"),
    ("loss=lots", "Parameter 'loss' expects a percentage from 0 to 100, not 'lots'"),
    ("delay=10 parsecs", "Parameter 'delay' expects a time such as 10ms, 500us or 1s, "
                         "not '10 parsecs'"),
    ("rate=0", "Parameter 'rate' expects bits per second such as 1000000, 100k or 10M, "
               "not '0'"),
    ("limit=0", "Parameter 'limit' expects a number of frames >= 1, not '0'"),
    ("queue=up", "Parameter 'queue' expects 'all', 'rx' or 'tx'"),
    ("bogus=1", "Parameter 'bogus' is unexpected"),
    ("seed=x", "Parameter 'seed' expects a number, not 'x'"),
])
def test_bad_options_are_one_line_errors(text: str, message: str) -> None:
    net = Net(MainLoop())
    net.add_netdev(parse_opts("hubport,id=h0,hubid=0", "type"))
    with pytest.raises(UserError) as caught:
        net.add_object(parse_opts(f"filter-netem,id=f0,netdev=h0,{text}", "qom-type"))
    assert str(caught.value) == message


def test_lab_object_counters_show_in_info_network_and_trace() -> None:
    with Lab() as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        a, b = lab.peer("a", netdev="h0"), lab.peer("b", netdev="h1")
        lab.object("filter-netem,id=f0,netdev=h0,loss=100%,queue=rx")
        trace, lines = Trace(), io.StringIO()
        trace.open_log(lines)
        trace.attach(lab.net)
        trace.enable("net_filter_netem")
        try:
            a.send(frame(0))  # from a into h0: h0's rx direction
            b.send(frame(1))  # h0 sends it on to a: tx, not filtered
        finally:
            trace.close()
            logging.getLogger("toynic.trace").setLevel(logging.NOTSET)
        text = lab.monitor().execute("info network")
        assert a.received == [frame(1)] and b.received == []
    assert " \\ h0: a: index=0,type=peer,test peer" in text
    assert ("    filter-netem f0: queue=rx passed=0 dropped=1 duplicated=0 reordered=0 "
            "delayed=0 corrupted=0") in text
    assert lines.getvalue() == ("net_filter_netem filter=f0 netdev=h0 dir=rx fate=drop "
                                "len=60 delay_ns=0\n")


def test_delay_on_host_time_in_a_free_running_lab() -> None:
    with Lab() as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        a, b = lab.peer("a", netdev="h0"), lab.peer("b", netdev="h1")
        lab.object("filter-netem,id=f0,netdev=h1,delay=20ms")
        start = lab.net.timeline.now_ns()
        a.send(frame(0))
        assert b.received == []
        assert lab.run_until(lambda: bool(b.received), timeout=10)
        assert lab.net.timeline.now_ns() - start >= 20_000_000
        assert b.received == [frame(0)]


def test_cli_error_is_one_line_and_status_1() -> None:
    result = run_toynic("-netdev", "hubport,id=h0,hubid=0",
                        "-object", "filter-netem,id=f0,netdev=h0,jitter=soon")
    assert result.returncode == 1
    assert result.stderr == ("toynic: -object filter-netem,id=f0,netdev=h0,jitter=soon: "
                             "Parameter 'jitter' expects a time such as 10ms, 500us or 1s, "
                             "not 'soon'\n")


def netem_ping_run() -> tuple[str, str, list[tuple[int, str]]]:
    """Two machines ping across a lossy, jittery, slow filter-netem in a deterministic lab;
    the consoles and the (virtual time, fate) of every netem decision."""
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        lab.object("filter-netem,id=f0,netdev=h0,loss=25%,delay=20ms,jitter=15ms,"
                   "reorder=10%,rate=1M,seed=42")
        lines = io.StringIO()
        lab.trace("net_filter_netem", lines)
        pingd = lab.machine("pingd", "ip=10.0.0.1 timeout=3", ["ne2k_isa,netdev=h1"])
        ping = lab.machine("ping", "ip=10.0.0.2 peer=10.0.0.1 count=12 interval=100 "
                           "timeout_ms=1000", ["ne2k_isa,netdev=h0"])
        assert lab.run_until(lambda: ping.exit_code is not None
                             and pingd.exit_code is not None, timeout=60)
        logging.getLogger("toynic.trace").setLevel(logging.NOTSET)
        fates = [(int(line.split()[0][2:]), line.split("fate=")[1].split()[0])
                 for line in lines.getvalue().splitlines()]
        return ping.output, pingd.output, fates


def test_netem_in_a_deterministic_lab_gives_the_same_run_every_time() -> None:
    first = netem_ping_run()
    assert netem_ping_run() == first
    assert netem_ping_run() == first
    ping_output, _, fates = first
    replies = [line for line in ping_output.splitlines() if "bytes from" in line]
    lost = [line for line in ping_output.splitlines() if "no reply" in line]
    assert replies and lost and len(replies) + len(lost) == 12
    assert {"drop", "delay"} <= {fate for _, fate in fates}
    # A ping is lost only to a drop: the longest a frame is held (35 ms, plus 0.5 ms on
    # the 1 Mbit/s wire) is far inside the 1 s the pinger waits, in virtual time.
    assert len(lost) <= sum(fate == "drop" for _, fate in fates)
    # Causality: every round trip crosses the filter twice, delayed by at least
    # 20 - 15 = 5 ms each way (or sent at once when reordered): never a negative time.
    for line in replies:
        rtt_ms = float(line.split("time=")[1].split()[0])
        assert 0 < rtt_ms < 1000
