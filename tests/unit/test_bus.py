"""Address decoding: Bus (MMIO regions, page cache) and IsaBus (I/O ports)."""

import pytest

from emu.core.bus import Bus, BusError, IsaBus, Ram, Route


class Recorder:
    """A region that logs accesses and answers with its offset."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, int, int | None]] = []

    def read(self, offset: int, size: int) -> int:
        self.log.append(("r", offset, size, None))
        return offset

    def write(self, offset: int, size: int, value: int) -> None:
        self.log.append(("w", offset, size, value))


def test_accesses_reach_the_region_with_relative_offsets():
    bus = Bus()
    dev = Recorder()
    bus.map(0x1000_0000, 0x100, dev, "uart")
    assert bus.read(0x1000_0005, 1) == 5
    bus.write(0x1000_0010, 4, 0xDEAD)
    assert dev.log == [("r", 5, 1, None), ("w", 0x10, 4, 0xDEAD)]


def test_unmapped_and_straddling_accesses_raise_bus_errors():
    bus = Bus()
    bus.map(0x1000_0000, 0x100, Recorder(), "uart")
    with pytest.raises(BusError) as load:
        bus.read(0x1000_0100, 1)
    assert (load.value.addr, load.value.write) == (0x1000_0100, False)
    with pytest.raises(BusError) as store:
        bus.write(0x1000_00FE, 4, 0)
    assert (store.value.addr, store.value.write) == (0x1000_00FE, True)
    with pytest.raises(BusError):
        bus.read(0x0FFF_FFFF, 1)


def test_a_small_region_does_not_make_the_rest_of_its_page_decodable():
    bus = Bus()
    bus.map(0x2000, 0x10, Recorder(), "small")
    for _ in range(3):
        assert bus.read(0x2004, 1) == 4
        with pytest.raises(BusError):
            bus.read(0x2010, 1)


def test_cached_pages_follow_later_mappings():
    bus = Bus()
    first = Recorder()
    bus.map(0x4000, 0x1000, first, "first")
    assert bus.read(0x4008, 4) == 8
    with pytest.raises(BusError):
        bus.read(0x5008, 4)
    second = Recorder()
    bus.map(0x5000, 0x1000, second, "second")
    assert bus.read(0x5008, 4) == 8
    assert second.log == [("r", 8, 4, None)]


def test_overlapping_maps_are_refused():
    bus = Bus()
    bus.map(0x1000, 0x100, Recorder(), "a")
    with pytest.raises(ValueError, match="overlaps a"):
        bus.map(0x10F0, 0x100, Recorder(), "b")


def test_ram_is_little_endian():
    ram = Ram(16)
    ram.write(4, 4, 0x11223344)
    assert ram.data[4:8] == bytes.fromhex("44332211")
    assert ram.read(5, 2) == 0x2233


def test_isa_ports_decode_to_boards_and_unclaimed_ports_float_high():
    isa = IsaBus()
    board = Recorder()
    isa.map(0x300, 0x20, board, "ne2k")
    assert isa.read(0x310, 2) == 0x10
    isa.write(0x31F, 1, 7)
    assert board.log == [("r", 0x10, 2, None), ("w", 0x1F, 1, 7)]
    assert isa.read(0x2FF, 1) == 0xFF
    assert isa.read(0x320, 4) == 0xFFFF_FFFF
    isa.write(0x320, 1, 1)
    assert len(board.log) == 2


@pytest.mark.parametrize(("port", "size"), [
    (0x301, 2), (0x31F, 2), (0x311, 2), (0x301, 4), (0x302, 4), (0x303, 4), (0x31E, 4),
    (0x2FF, 2), (0x321, 2), (0xFFFF, 2), (0xFFFE, 4),
])
def test_unaligned_wide_port_accesses_read_zero_and_drop_writes(port: int, size: int) -> None:
    """As QEMU's x86 `in`/`out`: a 16/32-bit access at a port not aligned to its size is
    invalid for the I/O space, whoever decodes the port; no board sees it."""
    isa = IsaBus()
    board = Recorder()
    isa.map(0x300, 0x20, board, "ne2k")
    assert isa.read(port, size) == 0
    isa.write(port, size, 0x1234)
    assert board.log == []


def test_aligned_wide_port_accesses_still_reach_the_board() -> None:
    isa = IsaBus()
    board = Recorder()
    isa.map(0x300, 0x20, board, "ne2k")
    assert (isa.read(0x310, 2), isa.read(0x31C, 4), isa.read(0x301, 1)) == (0x10, 0x1C, 1)
    isa.write(0x312, 2, 5)
    assert board.log == [("r", 0x10, 2, None), ("r", 0x1C, 4, None), ("r", 1, 1, None),
                         ("w", 0x12, 2, 5)]


def test_isa_bus_refuses_overlapping_boards():
    isa = IsaBus()
    isa.map(0x300, 0x20, Recorder(), "ne2k")
    with pytest.raises(ValueError):
        isa.map(0x310, 0x20, Recorder(), "other")


def test_a_route_names_the_region_and_every_address_of_that_size_it_covers():
    bus = Bus()
    dev = Recorder()
    bus.map(0x1000_0000, 0x100, dev, "uart")
    assert bus.route(0x1000_0010, 4) == Route(0x1000_0000, 0x1000_00FD, 0x1000_0000, dev.read,
                                              dev.write)
    assert bus.route(0x1000_00FE, 4) is None  # straddles the end
    assert bus.route(0x0FFF_FFFF, 1) is None


def test_routes_look_through_the_isa_window_to_the_board():
    bus = Bus()
    isa = IsaBus()
    bus.map(0x2000_0000, IsaBus.SIZE, isa, "isa-io")
    board = Recorder()
    isa.map(0x300, 0x20, board, "ne2k")
    window = 0x2000_0000
    # Bytes: the board's whole port range. Wider: this one port (its alignment checked).
    assert bus.route(window + 0x305, 1) == Route(window + 0x300, window + 0x320, window + 0x300,
                                                 board.read, board.write)
    assert bus.route(window + 0x310, 2) == Route(window + 0x310, window + 0x311, window + 0x300,
                                                 board.read, board.write)
    # Refused (misaligned, straddling) and unclaimed ports: the window answers, for that port.
    for port, size in ((0x311, 2), (0x31E, 4), (0x320, 1)):
        route = bus.route(window + port, size)
        assert route == Route(window + port, window + port + 1, window, isa.read, isa.write)


class PortBoard(Recorder):
    """A board whose port 4 is served by handlers of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.port4: list[int] = []

    def route(self, offset: int, size: int) -> Route:
        if offset == 4:
            return Route(4, 5, 4, lambda _o, _s: 0x44, lambda _o, _s, v: self.port4.append(v))
        return Route(offset, offset + 1, 0, self.read, self.write)


def test_a_board_that_routes_its_own_ports_is_looked_through():
    bus = Bus()
    isa = IsaBus()
    bus.map(0x2000_0000, IsaBus.SIZE, isa, "isa-io")
    board = PortBoard()
    isa.map(0x300, 0x20, board, "ne2k")
    route = bus.route(0x2000_0304, 2)
    assert route is not None and (route.lo, route.hi, route.base) == (
        0x2000_0304, 0x2000_0305, 0x2000_0304)
    assert route.read(0, 2) == 0x44
    route.write(0, 2, 7)
    assert board.port4 == [7]
    other = bus.route(0x2000_0306, 2)
    assert other == Route(0x2000_0306, 0x2000_0307, 0x2000_0300, board.read, board.write)


def test_a_ports_bursts_survive_the_windows_on_the_way():
    """A board's read_burst/write_burst reach the route translated code caches, through
    IsaBus and the bus, with the range shifted to bus addresses as the handlers are."""
    taken: list[bytes] = []

    def read_burst(_offset: int, _size: int, count: int) -> bytes:
        return bytes(range(2 * count))

    def write_burst(_offset: int, size: int, data: bytes) -> int:
        taken.append(bytes(data))
        return len(data) // size

    class BurstBoard(Recorder):
        def route(self, offset: int, size: int) -> Route:
            return Route(offset, offset + 1, offset, self.read, self.write, read_burst,
                         write_burst)

    bus = Bus()
    isa = IsaBus()
    bus.map(0x2000_0000, IsaBus.SIZE, isa, "isa-io")
    isa.map(0x300, 0x20, BurstBoard(), "ne2k")
    route = bus.route(0x2000_0310, 2)
    assert route is not None and route[:3] == (0x2000_0310, 0x2000_0311, 0x2000_0310)
    assert route.read_burst is not None and route.write_burst is not None
    assert route.read_burst(0, 2, 3) == bytes(range(6))
    assert route.write_burst(0, 2, b"abcd") == 2 and taken == [b"abcd"]
    assert bus.route(0x2000_0000, 4) == Route(0x2000_0000, 0x2000_0001, 0x2000_0000, isa.read,
                                             isa.write), "no burst where none is offered"


def test_map_changes_are_announced_also_from_a_window():
    bus = Bus()
    isa = IsaBus()
    calls: list[str] = []
    bus.on_change(lambda: calls.append("bus"))
    bus.map(0x2000_0000, IsaBus.SIZE, isa, "isa-io")
    isa.map(0x300, 0x20, Recorder(), "ne2k")
    assert calls == ["bus", "bus"]
