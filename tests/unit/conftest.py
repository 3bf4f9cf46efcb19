"""Fixtures shared by the unit tests: a MainLoop, a Net on it, a qtest board with one NE2000."""

from collections.abc import Iterator

import pytest

from devices.ne2000 import Ne2000Isa
from emu.core.loop import MainLoop
from emu.testing.qtest import QTest
from netdev.net import Net
from tests.ne2000_driver import IOBASE


@pytest.fixture
def loop() -> Iterator[MainLoop]:
    """A MainLoop of the test's own, closed afterwards."""
    main = MainLoop()
    yield main
    main.close()


@pytest.fixture
def net(loop: MainLoop) -> Iterator[Net]:
    """A Net on the test's loop; every socket and fd handler released afterwards."""
    n = Net(loop)
    yield n
    n.close()


@pytest.fixture
def qt() -> QTest:
    return QTest()


@pytest.fixture
def card(qt: QTest) -> Ne2000Isa:
    """An NE2000 at the reference driver's I/O base, on IRQ 9."""
    return qt.add_ne2000(IOBASE, 9)
