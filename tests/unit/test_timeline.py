"""emu.core.timeline.HostTimeline: real-time scheduling on the main loop."""

from __future__ import annotations

from emu.core.loop import MainLoop
from emu.core.timeline import HostTimeline


def test_callbacks_run_in_deadline_order_and_not_before_their_instant() -> None:
    loop = MainLoop()
    timeline = HostTimeline(loop)
    fired: list[tuple[str, int]] = []
    start = timeline.now_ns()
    timeline.call_at(start + 20_000_000, lambda: fired.append(("late", timeline.now_ns())))
    timeline.call_at(start + 5_000_000, lambda: fired.append(("early", timeline.now_ns())))
    assert loop.run_until(lambda: len(fired) == 2, timeout=5)
    assert [name for name, _ in fired] == ["early", "late"]
    assert fired[0][1] >= start + 5_000_000
    assert fired[1][1] >= start + 20_000_000
    loop.close()


def test_a_cancelled_callback_never_runs() -> None:
    loop = MainLoop()
    timeline = HostTimeline(loop)
    fired: list[str] = []
    handle = timeline.call_at(timeline.now_ns(), lambda: fired.append("cancelled"))
    timeline.call_at(timeline.now_ns() + 1_000_000, lambda: fired.append("kept"))
    handle.cancel()
    assert loop.run_until(lambda: fired == ["kept"], timeout=5)
    assert fired == ["kept"]
    loop.close()
