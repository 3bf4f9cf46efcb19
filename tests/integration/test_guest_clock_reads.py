"""The guest library reads the clock (three CLINT accesses for 64-bit mtime) only when it has
to wait: a receiver that is behind takes frame after frame from the ring, and a
transmit the chip reports done at the first look needs no deadline. An idle timeout
still counts from the moment nothing is left to read."""

from __future__ import annotations

from emu.testing import Lab, LabMachine

FRAMES = 2000
NS_PER_S = 1_000_000_000


class CountingClock:
    """A machine's virtual clock that counts the reads the CLINT makes of it."""

    def __init__(self, clock: object) -> None:
        self.clock = clock
        self.reads = 0

    def now(self) -> int:
        self.reads += 1
        return self.clock.now()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.clock, name)


def count_clock_reads(machine: LabMachine) -> CountingClock:
    clint = machine.machine.clint
    counting = CountingClock(clint._clock)
    clint._clock = counting
    return counting


def flood(lab: Lab, sink_count: int, timeout_s: int) -> tuple[LabMachine, LabMachine]:
    lab.netdev("hubport,id=h0,hubid=0")
    lab.netdev("hubport,id=h1,hubid=0")
    sink = lab.machine("flood", f"mode=sink count={sink_count} timeout={timeout_s}",
                       ["ne2k_isa,netdev=h0"])
    sender = lab.machine("flood", f"mode=send count={FRAMES} size=64 ack=0",
                         ["ne2k_isa,netdev=h1"])
    return sink, sender


def test_a_flood_reads_the_clock_only_to_wait() -> None:
    with Lab(deterministic=True) as lab:
        sink, sender = flood(lab, FRAMES, 20)
        sink_clock, sender_clock = count_clock_reads(sink), count_clock_reads(sender)
        stats = sink.nic.chip.stats
        assert lab.run_until(lambda: stats.accepted >= FRAMES, 60), sink.output
        # Before, each frame cost three reads on each side (a deadline per frame).
        assert sink_clock.reads < FRAMES / 50, sink_clock.reads
        assert sender_clock.reads < FRAMES / 50, sender_clock.reads
        assert lab.run_until(lambda: sink.exit_code is not None, 60), sink.output
        assert f"flood: received {FRAMES} frames, 0 out of order, 0 corrupt" in sink.output


def test_an_idle_timeout_counts_from_the_last_frame() -> None:
    with Lab(deterministic=True) as lab:
        sink, _ = flood(lab, FRAMES + 1, 1)
        stats = sink.nic.chip.stats
        assert lab.run_until(lambda: stats.accepted >= FRAMES, 60), sink.output
        last = lab.now_ns
        assert lab.wait_output(sink, "flood: timeout"), sink.output
        idle = lab.now_ns - last
        assert f"received {FRAMES}/{FRAMES + 1} frames" in sink.output
        assert NS_PER_S <= idle < NS_PER_S * 11 // 10, idle
