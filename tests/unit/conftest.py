"""Fixtures shared by the unit tests of the net layer."""

from collections.abc import Iterator

import pytest

from emu.loop import MainLoop
from netdev.net import Net


@pytest.fixture
def net() -> Iterator[Net]:
    """A Net on its own MainLoop; every socket and fd handler released afterwards."""
    loop = MainLoop()
    n = Net(loop)
    yield n
    n.close()
    loop.close()
