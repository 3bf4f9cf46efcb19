"""PowerDevice — QEMU's sifive_test (hw/misc/sifive_test.c): the guest's way to end the run.

A 32-bit write whose low 16 bits are POWER_PASS (0x5555) powers off with status 0;
POWER_FAIL (0x3333) powers off with status `value >> 16`. Other values are ignored (QEMU
logs them as guest errors; toynic has no guest-error log). Reads return 0.
"""

from __future__ import annotations

from collections.abc import Callable

POWER_PASS = 0x5555
POWER_FAIL = 0x3333


class PowerDevice:
    """An MMIO region that calls `on_poweroff(status)` when the guest asks to exit."""

    def __init__(self, on_poweroff: Callable[[int], None]) -> None:
        self._on_poweroff = on_poweroff

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset != 0:
            return
        command = value & 0xFFFF
        if command == POWER_PASS:
            self._on_poweroff(0)
        elif command == POWER_FAIL:
            self._on_poweroff((value >> 16) & 0xFFFF)
