"""The deterministic Lab (emu.board.scheduler.QuantumScheduler): two machines and a
tap on one hub give the same consoles, the same frames at the same virtual instants,
every run, whatever the host does meanwhile."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.core.errors import UserError
from emu.testing import Lab, LabMachine
from emu.tracetool.parse import parse_line

PING_ARGS = "ip=10.0.0.2 peer=10.0.0.1"
ETH_IPV4 = b"\x08\x00"
ICMP_REQUEST, ICMP_REPLY = 8, 0


def build(lab: Lab, count: int = 5, ping_extra: str = "") -> tuple[LabMachine, LabMachine]:
    """pingd (A) and ping (B) on hub 0, with a tap peer on the hub's third port."""
    for port in ("h0", "h1", "h2"):
        lab.netdev(f"hubport,id={port},hubid=0")
    lab.peer("tap", "h2")
    a = lab.machine("pingd", f"ip=10.0.0.1 count={count}", ["ne2k_isa,netdev=h0"], name="A")
    b = lab.machine("ping", f"{PING_ARGS} count={count} {ping_extra}",
                    ["ne2k_isa,netdev=h1"], name="B")
    return a, b


def both_done(*machines: LabMachine) -> Callable[[], bool]:
    return lambda: all(m.exit_code is not None for m in machines)


def ping_run(slow: Callable[[], None] | None = None,
             ping_extra: str = "") -> tuple[str, str, list[tuple[int, bytes]]]:
    """One two-machine ping: consoles and the tap's frame log (virtual ns, bytes)."""
    with Lab(deterministic=True, quantum_ns=50_000) as lab:
        a, b = build(lab, ping_extra=ping_extra)
        if slow is not None:
            slow_down(a, slow)
        assert lab.run_until(both_done(a, b), 10), b.output
        assert (a.exit_code, b.exit_code) == (0, 0), b.output
        tap = lab.peers["tap"]
        return a.output, b.output, list(zip(tap.received_at, tap.received, strict=True))


def burn_host_cpu(seconds: float) -> None:
    """Keep the host's CPU busy for `seconds` of real time (a slow or loaded host)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def slow_down(machine: LabMachine, pause: Callable[[], None]) -> None:
    """Make the host slow for `machine`: `pause()` before every CPU slice it runs."""
    cpu = machine.machine.cpu
    run = cpu.run

    def slow_run(budget: int) -> int:
        pause()
        return run(budget)

    cpu.run = slow_run  # type: ignore[method-assign]


@contextmanager
def cpu_hog() -> Iterator[None]:
    """A child process that keeps one host core busy (at most 120 s), stopped by PID."""
    hog = subprocess.Popen([sys.executable, "-c",
                            "import time\nend = time.monotonic() + 120\n"
                            "while time.monotonic() < end: pass\n"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait(10)


def icmp(frame: bytes) -> tuple[int, int] | None:
    """(ICMP type, sequence) of an echo frame, else None."""
    if len(frame) < 42 or frame[12:14] != ETH_IPV4 or frame[23] != 1:
        return None
    return frame[34], int.from_bytes(frame[40:42], "big")


def test_two_machine_ping_is_identical_three_times_one_under_a_cpu_hog() -> None:
    first = ping_run()
    assert ping_run() == first
    with cpu_hog():
        assert ping_run() == first
    a_out, b_out, frames = first
    assert "5 packets transmitted, 5 received, 0% packet loss" in b_out
    assert "5 replies sent, 1 ARP replies, done" in a_out
    assert [len(frame) for _, frame in frames] == [60, 60] + [98] * 10


def test_no_reply_before_its_request_and_frames_in_time_order() -> None:
    _, b_out, frames = ping_run()
    times = [when for when, _ in frames]
    assert times == sorted(times)
    requests = {icmp(f)[1]: t for t, f in frames if icmp(f) and icmp(f)[0] == ICMP_REQUEST}
    replies = {icmp(f)[1]: t for t, f in frames if icmp(f) and icmp(f)[0] == ICMP_REPLY}
    assert sorted(requests) == sorted(replies) == [1, 2, 3, 4, 5]
    for seq, sent in requests.items():
        assert replies[seq] > sent, f"icmp_seq={seq}: reply at {replies[seq]} <= {sent}"
    assert "rtt min/avg/max" in b_out


def test_a_guest_timeout_is_met_in_virtual_time_on_a_slow_host() -> None:
    """pingd's host is slow (1 ms of busy host CPU before each of its slices, far more
    than ping's 20 ms virtual timeout would allow a real-time lab): every reply still
    arrives in time, because only virtual time counts."""
    a_out, b_out, _ = ping_run(slow=lambda: burn_host_cpu(0.001), ping_extra="timeout_ms=20")
    assert "5 packets transmitted, 5 received, 0% packet loss" in b_out
    assert (a_out, b_out) == ping_run(ping_extra="timeout_ms=20")[:2]


def test_a_frame_scheduled_at_an_instant_arrives_at_that_instant() -> None:
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        sender, receiver = lab.peer("s", "h0"), lab.peer("r", "h1")
        frame = bytes(60)
        sender.send(frame, at_ns=1_234_567)
        lab.run_for(0.001)
        assert receiver.received == [] and lab.now_ns == 1_000_000
        assert lab.run_until(lambda: bool(receiver.received), 1.0)
        assert receiver.received == [frame]
        assert receiver.received_at == [1_234_567]


def test_idle_time_jumps_and_the_timeout_is_virtual() -> None:
    """pingd with nobody to answer: two virtual seconds pass in a handful of rounds."""
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.machine("pingd", "ip=10.0.0.1", ["ne2k_isa,netdev=h0"])
        assert lab.scheduler is not None
        assert not lab.run_until(lambda: False, 2.0)
        assert lab.now_ns == 2_000_000_000
        assert lab.scheduler.rounds < 100


def test_the_wall_cap_raises() -> None:
    with Lab(deterministic=True, wall_cap=0.0) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.machine("pingd", "ip=10.0.0.1", ["ne2k_isa,netdev=h0"])
        with pytest.raises(TimeoutError, match="real time"):
            lab.run_for(1.0)


@pytest.mark.parametrize("netdev", [
    "socket,id=n0,listen=127.0.0.1:0",
    "socket,id=n0,udp=127.0.0.1:1,localaddr=127.0.0.1:0",
    "tap,id=n0",
])
def test_host_netdevs_are_refused(netdev: str) -> None:
    with Lab(deterministic=True) as lab, pytest.raises(UserError, match="no host I/O"):
        lab.netdev(netdev)


def test_trace_lines_carry_global_time_and_machine() -> None:
    def traced() -> str:
        out = io.StringIO()
        with Lab(deterministic=True) as lab:
            lab.trace(["ne2000_transmit", "ne2000_receive", "net_hub_forward"], out)
            a, b = build(lab, count=1)
            assert lab.run_until(both_done(a, b), 10)
        return out.getvalue()

    text = traced()
    assert text == traced()
    last: dict[str, int] = {}
    for line in text.splitlines():
        parsed = parse_line(line)
        assert parsed is not None, line
        event, _, when, machine = parsed
        assert when is not None and machine in {"A", "B", "net"}, line
        assert when >= last.get(machine, 0), line
        last[machine] = when
        if event.startswith("ne2000_"):
            assert machine != "net", line
    assert set(last) == {"A", "B", "net"}


@settings(max_examples=6, deadline=None)
@given(count=st.integers(1, 3), quantum_us=st.sampled_from([10, 100, 1000]))
def test_hypothesis_sees_one_outcome_per_example(count: int, quantum_us: int) -> None:
    """Hypothesis replays examples; a run that depended on the host would be 'flaky'."""
    with Lab(deterministic=True, quantum_ns=quantum_us * 1000) as lab:
        a, b = build(lab, count=count)
        assert lab.run_until(both_done(a, b), 10)
        assert f"{count} packets transmitted, {count} received" in b.output
        assert len(lab.peers["tap"].received) == 2 + 2 * count


def test_the_testing_kit_example_holds() -> None:
    """docs/testing-kit.md's first deterministic example, as written there."""
    with Lab(deterministic=True, quantum_ns=100_000) as lab:
        for port in ("h0", "h1", "h2"):
            lab.netdev(f"hubport,id={port},hubid=0")
        tap = lab.peer("tap", "h2")
        lab.machine("pingd", "ip=10.0.0.1 count=5", ["ne2k_isa,netdev=h0"], name="A")
        b = lab.machine("ping", "ip=10.0.0.2 peer=10.0.0.1 count=5",
                        ["ne2k_isa,netdev=h1"], name="B")
        assert lab.run_until(lambda: b.exit_code is not None, timeout=10)
        assert "5 packets transmitted, 5 received" in b.output
        assert len(tap.received) == 12 and tap.received_at[0] == 100_000
