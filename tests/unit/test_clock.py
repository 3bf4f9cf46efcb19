"""VirtualClock: icount time from an instruction counter, timers in deterministic order."""

from emu.core.clock import VirtualClock


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


def test_time_is_instructions_times_two_to_the_shift() -> None:
    clock = VirtualClock(shift=3)
    counter = Counter()
    clock.attach_counter(counter)
    counter.value = 10
    assert clock.now() == 80
    clock.advance(1000)
    assert clock.now() == 1080
    clock.advance(-5)
    assert clock.now() == 1080


def test_attach_keeps_time_continuous() -> None:
    clock = VirtualClock()
    clock.advance(500)
    counter = Counter()
    counter.value = 42
    clock.attach_counter(counter)
    assert clock.now() == 500


def test_insns_until_rounds_up() -> None:
    clock = VirtualClock(shift=2)
    assert clock.insns_until(9) == 3
    assert clock.insns_until(8) == 2
    assert clock.insns_until(0) == 0


def test_timers_fire_in_deadline_then_arming_order() -> None:
    clock = VirtualClock()
    counter = Counter()
    clock.attach_counter(counter)
    fired: list[str] = []
    a = clock.timer(lambda: fired.append("a"))
    b = clock.timer(lambda: fired.append("b"))
    c = clock.timer(lambda: fired.append("c"))
    c.mod(20)
    b.mod(10)
    a.mod(10)
    assert clock.next_deadline() == 10
    counter.value = 9
    assert clock.run_timers() == 0
    counter.value = 25
    assert clock.run_timers() == 3
    assert fired == ["b", "a", "c"]
    assert not a.pending and clock.next_deadline() is None


def test_cancel_and_rearm() -> None:
    clock = VirtualClock()
    fired: list[int] = []
    t = clock.timer(lambda: fired.append(1))
    t.mod(5)
    t.cancel()
    clock.advance(10)
    assert clock.run_timers() == 0
    t.mod(12)
    t.mod(11)
    assert clock.next_deadline() == 11
    clock.advance(1)
    clock.run_timers()
    assert fired == [1]


def test_rearming_in_the_past_fires_on_next_call_not_forever() -> None:
    clock = VirtualClock()
    count = [0]

    def again() -> None:
        count[0] += 1
        t.mod(0)

    t = clock.timer(again)
    t.mod(0)
    assert clock.run_timers() == 1
    assert clock.run_timers() == 1
    assert count[0] == 2


def test_on_mod_reports_new_deadlines() -> None:
    clock = VirtualClock()
    seen: list[int] = []
    clock.on_mod = seen.append
    t = clock.timer(lambda: None)
    t.mod(7)
    t.mod(-3)
    assert seen == [7, 0]


def test_step_advances_and_fires_expired_timers() -> None:
    clock = VirtualClock()
    fired: list[int] = []
    clock.timer(lambda: fired.append(clock.now())).mod(100)
    assert clock.step(99) == 99 and fired == []
    assert clock.step(5) == 104 and fired == [104]
