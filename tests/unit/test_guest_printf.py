"""The guests' printf (guests/lib/console.c) against the host's formatting: fmt.elf prints
a fixed table of numbers, 32- and 64-bit, through the decimal path (32-bit division
while the value fits, 64-bit division above that) and the hex path (shifts)."""

from __future__ import annotations

from emu.testing import Lab

UNSIGNED64 = (0, 1, 9, 10, 99, 4294967295, 4294967296, 42949672950, 1000000000000,
              12345678901234567890, 18446744073709551615)
SIGNED64 = (0, -1, 2147483647, -2147483648, 4294967296, -4294967297,
            9223372036854775807, -9223372036854775808)
UNSIGNED32 = (0, 7, 10, 65535, 2147483648, 4294967295)
SIGNED32 = (0, -7, 2147483647, -2147483648)


def expected() -> list[str]:
    lines = [f"llu {v} {v:x} {v:020d}" for v in UNSIGNED64]
    lines += [f"lld {v} {v:24d} {v:<24d}|" for v in SIGNED64]
    lines += [f"u {v} {v:x} {v:X} {v:08x} {v:<6d}|" for v in UNSIGNED32]
    lines += [f"d {v} {v:5d} {v:05d} {v:<5d}|" for v in SIGNED32]
    return lines


def test_printf_formats_numbers_as_the_host_does() -> None:
    with Lab() as lab:
        machine = lab.machine("fmt")
        assert lab.run_until(lambda: machine.exit_code is not None, 30), machine.output
        assert machine.exit_code == 0
        assert machine.output.splitlines() == expected()
