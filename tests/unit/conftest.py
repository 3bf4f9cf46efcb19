"""Fixtures shared by the unit tests: a Net for the net layer, a qtest board with one NE2000."""

from collections.abc import Iterator

import pytest

from devices.ne2000 import Ne2000Isa
from emu.core.loop import MainLoop
from emu.testing.qtest import QTest
from netdev.net import Net
from tests.ne2000_driver import IOBASE


@pytest.fixture
def net() -> Iterator[Net]:
    """A Net on its own MainLoop; every socket and fd handler released afterwards."""
    loop = MainLoop()
    n = Net(loop)
    yield n
    n.close()
    loop.close()


@pytest.fixture
def qt() -> QTest:
    return QTest()


@pytest.fixture
def card(qt: QTest) -> Ne2000Isa:
    """An NE2000 at the reference driver's I/O base, on IRQ 9."""
    return qt.add_ne2000(IOBASE, 9)
