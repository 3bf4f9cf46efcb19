"""IrqLine — QEMU's qemu_irq (hw/core/irq.c): a level-triggered wire from a device to a controller.

A device calls `set(level)`; whoever listens (the PLIC, a test) is told only when the
level changes. Lines are small objects so tests and traces can watch any of them.
"""

from __future__ import annotations

from collections.abc import Callable

from emu.core.trace import DISABLED, Trace


class IrqLine:
    """One interrupt wire; `level` is its current state."""

    __slots__ = ("_listeners", "level", "name", "trace")

    def __init__(self, name: str = "irq") -> None:
        self.name = name
        self.level = False
        self._listeners: list[Callable[[bool], None]] = []
        self.trace: Trace = DISABLED

    def connect(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(level)` on every change (and once now, with the current level)."""
        self._listeners.append(listener)
        listener(self.level)

    def set(self, level: bool) -> None:
        level = bool(level)
        if level == self.level:
            return
        self.level = level
        if self.trace.irq_set:
            self.trace.emit("irq_set", line=self.name, level=int(level))
        for listener in self._listeners:
            listener(level)

    def raise_(self) -> None:
        self.set(True)

    def lower(self) -> None:
        self.set(False)
