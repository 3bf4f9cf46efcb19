"""The sifive_test-style power device turns guest writes into an exit status."""

from devices.power import PowerDevice
from emu.board.layout import POWER_FAIL, POWER_PASS


def make() -> tuple[PowerDevice, list[int]]:
    calls: list[int] = []
    return PowerDevice(calls.append), calls


def test_pass_exits_zero() -> None:
    dev, calls = make()
    dev.write(0, 4, POWER_PASS)
    assert calls == [0]


def test_fail_carries_code_in_high_half() -> None:
    dev, calls = make()
    dev.write(0, 4, POWER_FAIL | 3 << 16)
    dev.write(0, 4, POWER_FAIL | 0xFFFF << 16)
    assert calls == [3, 0xFFFF]


def test_other_values_and_offsets_are_ignored() -> None:
    dev, calls = make()
    dev.write(0, 4, 0x1234)
    dev.write(4, 4, POWER_PASS)
    dev.write(0, 4, 0x7777)
    assert calls == []
    assert dev.read(0, 4) == 0
