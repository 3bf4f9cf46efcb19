"""Hypothesis settings for properties that run machines (QEMU has no counterpart: its
qtests use fixed inputs).

`machine_settings()` is `hypothesis.settings` with what a machine test needs:

- `deadline=None`: an example boots a machine and runs it for milliseconds to seconds,
  and the first one pays for imports, so a deadline only reports the host's speed;
- no explain phase: after the first failure Hypothesis traces every line each example
  runs (sys.settrace before Python 3.12) to list the lines "always and only run by
  failing test cases". For a machine test those are emulator and kit lines (a NIC's
  address filter, the failure report itself), never the guest's cause, and the tracing
  made a failing echo property 3.5x slower to shrink (10.9 s against 3.2 s on Python
  3.11). The lab's failure report (consoles, frames per link, a pcap per link) is the
  explanation instead;
- a small `max_examples` (25 unless told): each example costs a machine run.

The example database stays on (Hypothesis' default): a failure found once is replayed
first on the next run, exactly so in a deterministic lab.
"""

from __future__ import annotations

from typing import Any

from emu.testing.strategies import _needs_hypothesis

try:
    from hypothesis import Phase, settings
except ModuleNotFoundError:
    Phase = settings = None

DEFAULT_MACHINE_EXAMPLES = 25


@_needs_hypothesis
def machine_settings(max_examples: int = DEFAULT_MACHINE_EXAMPLES,
                     **overrides: Any) -> settings:
    """`hypothesis.settings` for a machine property (decorate the test with it); keyword
    `overrides` are passed on to `settings` (e.g. `database=None`, `phases=...`)."""
    phases = tuple(phase for phase in Phase if phase is not Phase.explain)
    values: dict[str, Any] = {"deadline": None, "phases": phases,
                              "max_examples": max_examples, **overrides}
    return settings(**values)
