"""The NE2000 as the DP8390 datasheet has it where QEMU's model stops: TCR loopback and CRC
inhibit, the tally counters, the receive overflow of `lossless=off` and its recovery, and
wire-timed transmit (devices.dp8390, devices.ne2000)."""

from __future__ import annotations

import io
import zlib

import pytest

from devices.dp8390 import fcs_ok, pages_for, wire_time_ns
from devices.dp8390_regs import (
    CNTR_MAX,
    E8390_CMD,
    E8390_NODMA,
    E8390_PAGE0,
    E8390_START,
    E8390_STOP,
    E8390_TRANS,
    EN0_COUNTER0,
    EN0_COUNTER1,
    EN0_COUNTER2,
    EN0_IMR,
    EN0_ISR,
    EN0_RCNTHI,
    EN0_RCNTLO,
    EN0_RSR,
    EN0_TCNTHI,
    EN0_TCNTLO,
    EN0_TPSR,
    EN0_TSR,
    EN0_TXCR,
    ENISR_COUNTERS,
    ENISR_OVER,
    ENISR_RX,
    ENISR_RX_ERR,
    ENISR_TX,
    ENRCR_AB,
    ENRCR_SEP,
    ENRSR_CRC,
    ENRSR_MPA,
    ENRSR_RXOK,
    ENTCR_CRC,
    ENTCR_LB0,
    ENTCR_LB1,
    ENTSR_PTX,
)
from devices.ne2000 import DEFAULT_MAC, IO_SIZE, Ne2000Isa, ne2k_isa_from_opts
from emu.core.bus import IsaBus
from emu.core.clock import VirtualClock
from emu.core.errors import UserError
from emu.core.irq import IrqLine
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.core.timeline import HostTimeline
from emu.core.trace import Trace
from emu.testing import QTest, RecordingClient
from netdev.client import connect_peers
from netdev.filter_netem import NetemFilter, NetemParams
from netdev.framing import BadFcsFrame
from netdev.net import Net
from tests.ne2000_driver import IOBASE, Ne2000Driver

MAC = DEFAULT_MAC
OTHER = bytes.fromhex("020000000099")
RING = (0x46, 0x80)  # the reference driver's ring: 58 pages


def frame(n: int, size: int = 100, dst: bytes = MAC) -> bytes:
    body = bytes((n + i) & 0xFF for i in range(size))
    return (dst + OTHER + b"\x88\xb5" + body)[:size]


def with_fcs(data: bytes) -> bytes:
    return data + zlib.crc32(data).to_bytes(4, "little")


class Rig:
    """A QTest with one NE2000 board built with the options under test, its reference
    driver (probed and started) and a recording peer."""

    def __init__(self, *, lossless: bool = True, clock: VirtualClock | None = None,
                 rcr: int = ENRCR_AB) -> None:
        self.qt = QTest(clock=clock)
        self.card = Ne2000Isa(MAC, "nic", lossless=lossless, tx_clock=clock)
        self.qt.map_io(IOBASE, IO_SIZE, self.card, "nic")
        self.card.irq.connect(self.qt.irqs[9].set)
        self.chip = self.card.chip
        self.peer = RecordingClient()
        connect_peers(self.card.nc, self.peer)
        self.driver = Ne2000Driver(self.qt, IOBASE, rx_start=RING[0], rx_stop=RING[1])
        assert self.driver.probe() == MAC
        self.driver.init(rcr=rcr)

    def out(self, reg: int, value: int) -> None:
        self.qt.outb(IOBASE + reg, value)

    def inb(self, reg: int) -> int:
        return self.qt.inb(IOBASE + reg)

    def start_tx(self, data: bytes) -> None:
        """Copy `data` to the transmit buffer and set CR.TXP (no wait for completion)."""
        self.driver.block_output(self.driver.tx_page << 8, data)
        self.out(EN0_TPSR, self.driver.tx_page)
        self.out(EN0_TCNTLO, len(data) & 0xFF)
        self.out(EN0_TCNTHI, len(data) >> 8)
        self.out(E8390_CMD, E8390_NODMA | E8390_TRANS | E8390_START)

    def header(self, page: int) -> bytes:
        return self.driver.block_input(page << 8, 4)


# ---- TCR loopback ---------------------------------------------------------------------


@pytest.mark.parametrize("lb", [ENTCR_LB0, ENTCR_LB1, ENTCR_LB0 | ENTCR_LB1])
def test_loopback_frame_goes_to_the_ring_not_the_wire(lb: int) -> None:
    rig = Rig()
    rig.out(EN0_TXCR, lb)
    data = frame(1)
    rig.start_tx(data)
    assert rig.peer.received == [], "a looped-back frame never reaches the wire"
    isr = rig.inb(EN0_ISR)
    assert isr & ENISR_TX and isr & ENISR_RX
    assert rig.inb(EN0_TSR) == ENTSR_PTX
    assert rig.inb(EN0_RSR) == ENRSR_RXOK
    assert rig.driver.receive() == [data]
    assert rig.chip.stats.looped == 1 and rig.chip.stats.tx_sent == 0


def test_loopback_goes_through_the_address_filter() -> None:
    rig = Rig(rcr=0)
    rig.out(EN0_TXCR, ENTCR_LB0)
    rig.start_tx(frame(1, dst=OTHER))
    rig.start_tx(frame(2, dst=b"\xff" * 6))
    assert rig.driver.receive() == []
    assert rig.chip.stats.filtered["unicast"] == 1
    assert rig.chip.stats.filtered["broadcast"] == 1
    rig.start_tx(frame(3))
    assert rig.driver.receive() == [frame(3)]


def test_crc_inhibit_receiver_checks_the_software_fcs() -> None:
    rig = Rig()
    rig.out(EN0_TXCR, ENTCR_LB0 | ENTCR_CRC)
    good = with_fcs(frame(1))
    assert fcs_ok(good)
    rig.start_tx(good)
    assert rig.driver.receive() == [frame(1)], "stored without its FCS, like wire frames"
    bad = bytearray(good)
    bad[20] ^= 0x10
    rig.out(EN0_ISR, 0xFF)
    rig.start_tx(bytes(bad))
    assert rig.inb(EN0_ISR) & ENISR_RX_ERR
    assert rig.inb(EN0_RSR) & ENRSR_CRC
    assert rig.driver.receive() == [], "RCR.SEP clear: errored frames are not stored"
    assert rig.chip.stats.filtered["bad_crc"] == 1
    assert rig.inb(EN0_COUNTER1) == 1
    assert rig.inb(EN0_COUNTER1) == 0, "cleared when read"


def test_crc_error_with_sep_is_stored_with_its_status() -> None:
    rig = Rig(rcr=ENRCR_AB | ENRCR_SEP)
    rig.out(EN0_TXCR, ENTCR_LB0 | ENTCR_CRC)
    rig.start_tx(frame(1) + b"\0\0\0\0")
    status = rig.header(RING[0])[0]
    assert status & ENRSR_CRC and not status & ENRSR_RXOK
    assert rig.chip.stats.accepted == 1


def test_wire_frames_wait_during_loopback_and_arrive_after() -> None:
    rig = Rig()
    rig.out(EN0_TXCR, ENTCR_LB0)
    assert rig.peer.send(frame(7)) == 0, "lossless: the frame waits in the net queue"
    assert len(rig.card.nc.incoming_queue) == 1
    assert rig.chip.receive(frame(8)) == -1
    assert rig.chip.stats.filtered["loopback"] == 1
    rig.out(EN0_TXCR, 0)
    assert rig.driver.receive() == [frame(7)]


def test_loopback_storm_is_bounded() -> None:
    """CVE-2021-3416 class: every TXP in loopback loops exactly one frame, nothing
    re-enters the net layer, and a full ring misses frames instead of growing."""
    rig = Rig()
    rig.out(EN0_TXCR, ENTCR_LB0)
    data = frame(1, size=1000)
    rig.start_tx(data)
    storm = 5000
    for _ in range(storm - 1):
        rig.out(E8390_CMD, E8390_NODMA | E8390_TRANS | E8390_START)
    stats = rig.chip.stats
    assert rig.peer.received == [] and len(rig.card.nc.incoming_queue) == 0
    assert stats.looped == storm
    capacity = (RING[1] - RING[0] - 1) // pages_for(1000)
    assert stats.accepted == capacity
    assert stats.missed == storm - capacity
    assert stats.offered == stats.accepted + stats.total_filtered() + stats.missed
    assert rig.inb(EN0_COUNTER2) == CNTR_MAX, "CNTR2 stops at 0xC0"
    assert rig.driver.receive() == [data] * capacity


# ---- tally counters ---------------------------------------------------------------------


def test_counter_reaching_0xc0_raises_cnt_and_irq() -> None:
    rig = Rig()
    rig.out(EN0_IMR, ENISR_COUNTERS)
    for _ in range(CNTR_MAX - 1):
        assert rig.card.nc.receive_bad_crc(frame(1)) > 0
    assert not rig.inb(EN0_ISR) & ENISR_COUNTERS
    assert not rig.qt.irq_level(9)
    assert rig.chip.peek(0, EN0_COUNTER1) == CNTR_MAX - 1, "peek does not clear"
    rig.card.nc.receive_bad_crc(frame(1))
    assert rig.inb(EN0_ISR) & ENISR_COUNTERS
    assert rig.qt.irq_level(9)
    assert rig.inb(EN0_COUNTER1) == CNTR_MAX
    assert rig.inb(EN0_COUNTER1) == 0
    assert rig.inb(EN0_COUNTER0) == 0
    rig.out(EN0_ISR, ENISR_COUNTERS)
    assert not rig.qt.irq_level(9)


def test_bad_crc_for_another_station_is_not_counted() -> None:
    rig = Rig()
    rig.card.nc.receive_bad_crc(frame(1, dst=OTHER))
    assert rig.inb(EN0_COUNTER1) == 0
    assert rig.chip.stats.filtered["unicast"] == 1


def test_netem_corruption_earns_crc_errors_and_stores_nothing() -> None:
    """filter-netem's `corrupt=` flips a bit on the wire: the NIC's FCS check fails."""
    rig = Rig()
    netem = NetemFilter("f0", rig.peer, HostTimeline(MainLoop()),
                        NetemParams.from_opts(parse_opts("filter-netem,corrupt=100%", "qom-type")))
    netem.attach()
    for n in range(3):
        assert rig.peer.send(frame(n)) > 0
    assert netem.stats.corrupted == 3
    assert rig.inb(EN0_COUNTER1) == 3
    assert not rig.inb(EN0_ISR) & ENISR_RX
    assert rig.inb(EN0_ISR) & ENISR_RX_ERR
    netem.close()
    assert rig.peer.send(frame(9)) > 0  # an undamaged frame is stored as before
    assert rig.inb(EN0_ISR) & ENISR_RX
    assert rig.inb(EN0_COUNTER1) == 0


def test_a_frame_keeps_its_bad_fcs_while_it_waits_in_the_queue() -> None:
    rig = Rig()
    rig.out(E8390_CMD, E8390_NODMA | E8390_STOP)  # stopped: frames wait in the NIC's queue
    assert rig.peer.send(BadFcsFrame(frame(1))) == 0
    rig.out(E8390_CMD, E8390_NODMA | E8390_START)  # started: the queue is flushed
    assert rig.inb(EN0_COUNTER1) == 1
    assert not rig.inb(EN0_ISR) & ENISR_RX


# ---- receive overflow (lossless=off) -----------------------------------------------------


def fill(rig: Rig, size: int = 1000) -> int:
    """Offer frames until one is missed; returns how many were stored."""
    for n in range(1000):
        rig.peer.send(frame(n, size))
        if rig.chip.stats.missed:
            return n
    raise AssertionError("the ring never overflowed")


def recover(rig: Rig) -> list[bytes]:
    """Linux's ei_rx_overrun, step by step; returns the frames drained."""
    rig.out(E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_STOP)
    rig.out(EN0_RCNTLO, 0)
    rig.out(EN0_RCNTHI, 0)
    rig.out(EN0_TXCR, ENTCR_LB0)
    rig.out(E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_START)
    drained = rig.driver.receive()
    rig.out(EN0_ISR, ENISR_OVER)
    rig.out(EN0_TXCR, 0)
    return drained


def test_overflow_misses_and_halts_until_recovery() -> None:
    rig = Rig(lossless=False)
    stored = fill(rig)
    assert rig.inb(EN0_ISR) & ENISR_OVER
    assert rig.inb(EN0_RSR) & ENRSR_MPA
    assert rig.chip.rx_halted
    # Making room is not enough: receive stays halted until the STOP of the recovery.
    got = rig.driver.receive(2)
    rig.peer.send(frame(500))
    assert rig.chip.stats.missed == 2
    assert rig.chip.peek(0, EN0_COUNTER2) == 2
    # Frames from the wire during the recovery's loopback are not heard.
    rig.out(E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_STOP)
    assert not rig.chip.rx_halted
    got += recover(rig)
    assert got == [frame(n, 1000) for n in range(stored)]
    assert not rig.inb(EN0_ISR) & ENISR_OVER
    after = [frame(600 + n, 200) for n in range(5)]
    for f in after:
        rig.peer.send(f)
    assert rig.driver.receive() == after
    stats = rig.chip.stats
    assert stats.offered == stats.accepted + stats.total_filtered() + stats.missed
    assert rig.inb(EN0_COUNTER2) == 2


def test_lossless_default_misses_nothing() -> None:
    rig = Rig()
    for n in range(100):
        rig.peer.send(frame(n, 1000))
    assert rig.chip.stats.missed == 0
    assert not rig.inb(EN0_ISR) & ENISR_OVER
    got: list[bytes] = []
    for _ in range(100):
        got += rig.driver.receive(3)
        if len(got) == 100:
            break
    assert got == [frame(n, 1000) for n in range(100)]


# ---- wire-timed transmit ---------------------------------------------------------------


def test_wire_time_formula() -> None:
    # 8 preamble + 60 (padded) + 4 FCS + 12 gap = 84 bytes at 800 ns.
    assert wire_time_ns(10) == 84 * 800
    assert wire_time_ns(1514) == (8 + 1514 + 4 + 12) * 800
    assert wire_time_ns(100, fcs=False) == (8 + 100 + 12) * 800


def test_transmit_completes_after_its_wire_time() -> None:
    clock = VirtualClock()
    rig = Rig(clock=clock)
    rig.out(EN0_ISR, 0xFF)
    data = frame(1, 500)
    rig.start_tx(data)
    assert rig.inb(E8390_CMD) & E8390_TRANS, "TXP reads 1 while the frame is on the wire"
    assert not rig.inb(EN0_ISR) & ENISR_TX and rig.peer.received == []
    rig.qt.clock_step(wire_time_ns(500) - 1)
    assert not rig.inb(EN0_ISR) & ENISR_TX
    rig.qt.clock_step(1)
    assert rig.inb(EN0_ISR) & ENISR_TX and rig.inb(EN0_TSR) == ENTSR_PTX
    assert rig.peer.received == [data]
    assert not rig.inb(E8390_CMD) & E8390_TRANS


def test_stop_cuts_a_wire_timed_transmit_off() -> None:
    clock = VirtualClock()
    rig = Rig(clock=clock)
    rig.out(EN0_ISR, 0xFF)
    rig.start_tx(frame(1))
    rig.out(E8390_CMD, E8390_NODMA | E8390_STOP)
    rig.qt.clock_step(10 * wire_time_ns(1514))
    assert rig.peer.received == [] and not rig.inb(EN0_ISR) & ENISR_TX
    assert rig.chip.stats.tx_aborted == 1
    rig.out(E8390_CMD, E8390_NODMA | E8390_START)
    rig.start_tx(frame(2))  # the resend completes
    rig.qt.clock_step(wire_time_ns(100))
    assert rig.peer.received == [frame(2)] and rig.inb(EN0_ISR) & ENISR_TX


# ---- options and info ------------------------------------------------------------------


def build(net: Net, text: str, clock: VirtualClock | None = None) -> Ne2000Isa:
    return ne2k_isa_from_opts(parse_opts(f"ne2k_isa,netdev=n0,{text}", "driver"),
                              isa=IsaBus(), isa_irq=lambda n: IrqLine(f"irq{n}"), net=net,
                              nic_index=0, clock=clock)


@pytest.mark.parametrize(("text", "lossless", "wire"), [
    ("iobase=0x300", True, False),
    ("lossless=off", False, False),
    ("lossless=on,tx-timing=wire", True, True),
    ("tx-timing=immediate", True, False),
])
def test_options(net: Net, text: str, lossless: bool, wire: bool) -> None:
    net.add_netdev(parse_opts("hubport,id=n0,hubid=0", "type"))
    chip = build(net, text, VirtualClock()).chip
    assert chip.lossless == lossless
    assert (chip.tx_clock is not None) == wire


@pytest.mark.parametrize(("text", "message"), [
    ("tx-timing=slow", "Property 'tx-timing' expects immediate or wire, not 'slow'"),
    ("lossless=maybe", "Parameter 'lossless' expects 'on' or 'off'"),
])
def test_bad_options(net: Net, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build(net, text, VirtualClock())


def test_wire_timing_needs_a_clock(net: Net) -> None:
    with pytest.raises(UserError, match="needs a machine's virtual clock"):
        build(net, "tx-timing=wire")


def test_info_shows_tcr_counters_and_overflow() -> None:
    rig = Rig(lossless=False)
    fill(rig)
    rig.out(EN0_TXCR, ENTCR_LB0)
    text = rig.card.describe()
    assert "loopback=internal" in text and "lossless=off" in text
    assert "CNTR2=1" in text and "overflow=halted" in text and "missed=1" in text
    assert rig.chip.peek(0, EN0_COUNTER2) == 1, "info clears no counter"


# ---- trace events ----------------------------------------------------------------------


def test_trace_events_for_loopback_overflow_missed_and_counters() -> None:
    rig = Rig(lossless=False)
    trace = Trace()
    out = io.StringIO()
    trace.open_log(out)
    for name in ("ne2000_loopback", "ne2000_overflow", "ne2000_missed",
                 "ne2000_counter_overflow"):
        trace.enable(name)
    rig.card.set_trace(trace)
    fill(rig)
    rig.peer.send(frame(999))
    for _ in range(CNTR_MAX):
        rig.card.nc.receive_bad_crc(frame(1))
    rig.out(E8390_CMD, E8390_NODMA | E8390_STOP)
    rig.out(EN0_TXCR, ENTCR_LB0)
    rig.out(E8390_CMD, E8390_NODMA | E8390_START)
    rig.driver.receive()
    rig.start_tx(frame(5))
    text = out.getvalue().splitlines()
    names = [line.split(" ", 1)[0] for line in text]
    assert names.count("ne2000_overflow") == 1
    assert names.count("ne2000_missed") == 2
    assert "ne2000_missed nic=nic reason=halted cntr2=2" in text
    assert names.count("ne2000_counter_overflow") == 1
    assert "counter=CNTR1" in text[names.index("ne2000_counter_overflow")]
    assert text[-1] == "ne2000_loopback nic=nic mode=internal len=100 crc=ok stored=yes"
