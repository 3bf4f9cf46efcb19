"""emu.core.trace (QEMU: trace/control.c + the log backend): patterns and events files as QEMU
reads them, event lines at each layer boundary, switching at run time, silence when off."""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path

import pytest

from devices.ne2000 import Ne2000Isa, decode_bits
from emu.core.errors import UserError
from emu.core.trace import (
    DISABLED,
    EVENT_NAMES,
    EVENTS,
    SUBSYSTEMS,
    Trace,
    help_text,
    match_events,
)
from emu.testing import RecordingClient
from netdev.client import NetClient, connect_peers
from netdev.framing import RecordBatch
from netdev.hub import Hub
from netdev.queue import MAX_QUEUED

ROOT = Path(__file__).resolve().parents[2]
BROADCAST_FRAME = b"\xff" * 6 + bytes.fromhex("525400000001") + b"\x08\x06" + bytes(46)


class Sink(RecordingClient):
    """A RecordingClient that answers `result` instead, when set (-1: dropped)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "test")
        self.result: int | None = None

    def receive(self, frame: bytes) -> int:
        taken = super().receive(frame)
        return taken if self.result is None or not taken else self.result


def traced(*patterns: str) -> tuple[Trace, io.StringIO]:
    trace = Trace()
    out = io.StringIO()
    trace.open_log(out)
    for pattern in patterns:
        trace.enable(pattern)
    return trace, out


def lines(out: io.StringIO) -> list[tuple[str, dict[str, str]]]:
    result = []
    for line in out.getvalue().splitlines():
        name, *pairs = line.split(" ")
        result.append((name, dict(pair.split("=", 1) for pair in pairs)))
    out.seek(0)
    out.truncate()
    return result


# -- patterns ---------------------------------------------------------------------------

def test_globs_and_names_select_like_qemu() -> None:
    assert match_events("ne2000_ioport_*") == [
        "ne2000_ioport_read", "ne2000_ioport_write", "ne2000_ioport_ignored"]
    assert match_events("irq_se?") == ["irq_set"]
    assert match_events("*") == list(EVENT_NAMES)
    assert match_events("net_socket_read") == ["net_socket_read"]
    assert match_events("net_socket_rea") == []
    assert match_events("net.socket*") == []  # '.' is literal, not a regex


def test_apply_warns_for_unknown_names_only_and_minus_disables() -> None:
    trace = Trace()
    assert trace.apply("no_such_event") == "trace event 'no_such_event' does not exist"
    assert trace.apply("no_such_*") is None
    assert trace.apply("ne2000_*") is None
    assert trace.apply("-ne2000_ioport_read") is None
    on = trace.enabled()
    assert "ne2000_ioport_read" not in on and "ne2000_ioport_write" in on
    assert trace.apply("-*") is None
    assert trace.enabled() == []


def test_events_file_reads_patterns_in_order(tmp_path: Path) -> None:
    path = tmp_path / "events"
    path.write_text("# socket side\n\n  net_socket_*  \n-net_socket_write\nbogus\n# end\n")
    trace = Trace()
    warnings = trace.apply_file(str(path))
    assert warnings == [f"{path}:5: warning: trace event 'bogus' does not exist"]
    assert trace.enabled() == [n for n in EVENT_NAMES
                               if n.startswith("net_socket_") and n != "net_socket_write"]
    with pytest.raises(OSError):
        trace.apply_file(str(tmp_path / "missing"))


def test_events_file_must_be_a_regular_file_of_at_most_1_mib(tmp_path: Path) -> None:
    limit = 1 << 20
    at_limit = tmp_path / "at-limit"
    at_limit.write_text(("#" * 63 + "\n") * (limit // 64 - 1) + "#" * 42 + "\nirq_set" + "\n" * 14)
    assert at_limit.stat().st_size == limit
    trace = Trace()
    assert trace.apply_file(str(at_limit)) == []
    assert trace.enabled() == ["irq_set"]
    over = tmp_path / "over"
    with over.open("wb") as f:
        f.truncate(limit + 1)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: opening it for reading must not wait for one
    for path, reason in [(over, "larger than 1 MiB, the limit for an events file"),
                         (fifo, "not a regular file"), (tmp_path, "not a regular file"),
                         (Path("/dev/null"), "not a regular file")]:
        with pytest.raises(UserError) as info:
            Trace().apply_file(str(path))
        assert str(info.value) == f"{path}: {reason}"


def test_disabled_trace_cannot_be_switched_on() -> None:
    with pytest.raises(RuntimeError):
        DISABLED.enable("ne2000_*")
    with pytest.raises(RuntimeError):
        DISABLED.irq_set = True
    assert DISABLED.enabled() == []


def test_help_lists_every_event_once() -> None:
    names = help_text().splitlines()
    assert names == list(EVENT_NAMES) and len(set(names)) == len(names)


def test_every_event_is_emitted_somewhere_and_every_emit_is_registered() -> None:
    # emu/cpu is left out: its code generator has an emit() of its own.
    sources = [p.read_text() for d in ("emu", "netdev", "devices") for p in (ROOT / d).rglob("*.py")
               if "cpu" not in p.relative_to(ROOT).parts]
    emitted = set()
    for text in sources:
        emitted |= set(re.findall(r'emit\(\s*"([a-z0-9_]+)"', text))
    assert emitted == set(EVENT_NAMES)
    assert {event.subsystem for event in EVENTS} == set(SUBSYSTEMS)


# -- the NE2000 -------------------------------------------------------------------------

def started_card(trace: Trace) -> tuple[Ne2000Isa, Sink]:
    card = Ne2000Isa(name="nic0")
    wire = Sink("wire")
    connect_peers(card.nc, wire)
    card.set_trace(trace)
    wire.set_trace(trace)
    w = card.write
    w(0x00, 1, 0x21)  # CR: STP, abort DMA, page 0
    w(0x01, 1, 0x46)  # PSTART
    w(0x02, 1, 0x80)  # PSTOP
    w(0x03, 1, 0x46)  # BNRY
    w(0x0C, 1, 0x04)  # RCR: accept broadcast
    w(0x0F, 1, 0x01)  # IMR: PRX
    w(0x00, 1, 0x61)  # page 1
    w(0x07, 1, 0x46)  # CURR
    w(0x00, 1, 0x22)  # STA, page 0
    return card, wire


def test_register_writes_name_page_register_and_bits() -> None:
    trace, out = traced("ne2000_ioport_*")
    card, _ = started_card(trace)
    writes = [f for name, f in lines(out) if name == "ne2000_ioport_write"]
    assert [(f["page"], f["reg"], f["val"]) for f in writes] == [
        ("0", "CR", "0x21"), ("0", "PSTART", "0x46"), ("0", "PSTOP", "0x80"),
        ("0", "BNRY", "0x46"), ("0", "RCR", "0x04"), ("0", "IMR", "0x01"),
        ("0", "CR", "0x61"), ("1", "CURR", "0x46"), ("1", "CR", "0x22")]
    assert writes[0]["bits"] == "STP|RD2" and writes[5]["bits"] == "PRX"
    assert all(f["nic"] == "nic0" and f["addr"].startswith("0x") for f in writes)
    assert card.read(0x07, 1) == 0  # ISR, page 0
    assert lines(out) == [("ne2000_ioport_read", {
        "nic": "nic0", "addr": "0x07", "page": "0", "reg": "ISR", "val": "0x00"})]
    card.read(0x00, 2)  # registers are byte-wide: ignored
    assert lines(out) == [("ne2000_ioport_ignored",
                           {"nic": "nic0", "op": "read", "addr": "0x00", "size": "2"})]


def test_decode_bits() -> None:
    assert decode_bits(("STP", "STA", "TXP", "RD0", "RD1", "RD2", "PS0", "PS1"), 0x26) == \
        "STA|TXP|RD2"
    assert decode_bits(("A",), 0) == "-"


def test_receive_transmit_dma_and_irq_events() -> None:
    trace, out = traced("ne2000_receive*", "ne2000_transmit*", "ne2000_dma_*", "irq_set",
                        "net_queue_send")
    card, wire = started_card(trace)
    lines(out)
    wire.send(BROADCAST_FRAME)
    assert lines(out) == [
        ("ne2000_receive", {"nic": "nic0", "len": "60", "pages": "1", "curr": "0x46->0x47",
                            "bnry": "0x46", "isr": "0x01"}),
        ("irq_set", {"line": "nic0.irq", "level": "1"}),
        ("net_queue_send", {"sender": "wire", "receiver": "nic0", "len": "60", "result": "60"}),
    ]
    # A unicast frame for another station is filtered, and says why.
    wire.send(bytes.fromhex("020000000099") + BROADCAST_FRAME[6:])
    assert lines(out)[0] == ("ne2000_receive_drop", {"nic": "nic0", "reason": "unicast"})
    # Remote-DMA a frame into the transmit buffer, then transmit it.
    w = card.write
    w(0x0A, 1, len(BROADCAST_FRAME))  # RBCR0
    w(0x0B, 1, 0)
    w(0x08, 1, 0x00)  # RSAR0
    w(0x09, 1, 0x40)
    w(0x00, 1, 0x12)  # STA, remote write
    for byte in BROADCAST_FRAME:
        w(0x10, 1, byte)
    w(0x04, 1, 0x40)  # TPSR
    w(0x05, 1, len(BROADCAST_FRAME))
    w(0x06, 1, 0)
    w(0x00, 1, 0x26)  # STA, TXP
    assert lines(out) == [
        ("ne2000_dma_start", {"nic": "nic0", "dir": "write", "rsar": "0x4000", "count": "60"}),
        ("ne2000_dma_done", {"nic": "nic0", "dir": "write", "rsar": "0x403c", "width": "1"}),
        ("ne2000_transmit", {"nic": "nic0", "len": "60", "tpsr": "0x40"}),
        ("net_queue_send", {"sender": "nic0", "receiver": "wire", "len": "60",
                            "result": "60"}),
    ]
    w(0x05, 1, 0)  # TBCR0 = 0: nothing to send
    w(0x00, 1, 0x26)
    assert lines(out) == [("ne2000_transmit_error", {
        "nic": "nic0", "reason": "empty", "len": "0", "tpsr": "0x40"})]


def test_enable_and_disable_at_run_time() -> None:
    trace, out = traced()
    card, _ = started_card(trace)
    assert lines(out) == []
    trace.enable("ne2000_ioport_write")
    card.write(0x03, 1, 0x50)
    assert [f["reg"] for _, f in lines(out)] == ["BNRY"]
    trace.disable("ne2000_*")
    card.write(0x03, 1, 0x51)
    assert lines(out) == []
    trace.apply("ne2000_ioport_w*")
    card.write(0x03, 1, 0x52)
    assert [f["val"] for _, f in lines(out)] == ["0x52"]
    trace.detach(card)
    card.write(0x03, 1, 0x53)
    assert lines(out) == []


def test_nothing_is_emitted_while_events_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("emit called for an event that is off")

    monkeypatch.setattr(Trace, "emit", refuse)
    for trace in (DISABLED, Trace()):
        card, wire = started_card(trace)
        wire.send(BROADCAST_FRAME)
        card.write(0x00, 1, 0x26)
        card.read(0x1F, 1)
        hub = Hub(0)
        ports = [hub.add_port(f"p{i}") for i in range(2)]
        sinks = [Sink(f"s{i}") for i in range(2)]
        for port, sink in zip(ports, sinks, strict=True):
            connect_peers(port, sink)
            port.set_trace(trace)
            sink.set_trace(trace)
        sinks[0].send_batch(RecordBatch.from_frames([b"x" * 60] * 3))
        sinks[1].link_down = True
        sinks[1].send(b"y")


# -- the net layer ----------------------------------------------------------------------

def test_queue_drop_and_append_reasons() -> None:
    trace, out = traced("net_queue_*")
    src, sink = NetClient("src", "test"), Sink("dst")
    lonely = NetClient("lonely", "test")
    connect_peers(src, sink)
    for client in (src, sink, lonely):
        client.set_trace(trace)
    lonely.send(b"a")
    src.link_down = True
    src.send(b"b")
    src.link_down = False
    sink.link_down = True
    src.send(b"c")
    sink.link_down = False
    sink.result = -1
    src.send(b"d")
    assert [(n, f["reason"]) for n, f in lines(out) if n == "net_queue_drop"] == [
        ("net_queue_drop", "no_peer"), ("net_queue_drop", "link_down"),
        ("net_queue_drop", "receiver_link_down"), ("net_queue_drop", "receiver_dropped")]
    sink.result = None
    sink.accepting = False
    for _ in range(MAX_QUEUED + 1):
        src.send(b"e")
    events = lines(out)
    assert events[0] == ("net_queue_append", {"sender": "src", "receiver": "dst", "frames": "1",
                                              "queued": "1", "reason": "cannot_receive"})
    assert events[1][1]["reason"] == "backlog"
    assert events[-1] == ("net_queue_drop", {"sender": "src", "receiver": "dst", "frames": "1",
                                             "reason": "queue_full"})
    sink.accepting = True
    sink.flush_queued()
    assert lines(out) == [("net_queue_flush",
                           {"receiver": "dst", "delivered": str(MAX_QUEUED), "queued": "0"})]


def test_hub_forward_and_hold() -> None:
    trace, out = traced("net_hub_*")
    hub = Hub(7)
    ports = [hub.add_port(f"p{i}") for i in range(3)]
    sinks = [Sink(f"s{i}") for i in range(3)]
    for port, sink in zip(ports, sinks, strict=True):
        connect_peers(port, sink)
        port.set_trace(trace)
    sinks[0].send(b"z" * 64)
    assert lines(out) == [("net_hub_forward", {"hub": "7", "port": "p0", "to": "p2,p1",
                                               "frames": "1", "len": "64"})]
    sinks[0].send_batch(RecordBatch.from_frames([b"q" * 10, b"r" * 20]))
    assert lines(out)[0][1] == {"hub": "7", "port": "p0", "to": "p2,p1", "frames": "2",
                                "len": "30"}
    sinks[2].accepting = False
    sinks[1].send(b"w")
    assert lines(out) == [("net_hub_hold", {"hub": "7", "port": "p1"})]


def test_lines_go_through_per_subsystem_loggers(caplog: pytest.LogCaptureFixture) -> None:
    trace = Trace()
    trace.enable("irq_set")
    trace.enable("net_queue_send")
    src, sink = NetClient("a", "test"), Sink("b")
    connect_peers(src, sink)
    src.set_trace(trace)
    sink.set_trace(trace)
    with caplog.at_level(logging.DEBUG, logger="toynic.trace"):
        src.send(b"hello")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("toynic.trace.net", "net_queue_send sender=a receiver=b len=5 result=5")]


def test_two_traces_keep_to_their_own_output() -> None:
    one, out_one = traced("irq_set")
    two, out_two = traced("irq_set")
    card_one, _ = started_card(one)
    card_two, _ = started_card(two)
    lines(out_one)
    lines(out_two)
    card_one.irq.set(True)
    assert [f["line"] for _, f in lines(out_one)] == ["nic0.irq"]
    assert lines(out_two) == []
    one.close()
    two.close()
    card_two.irq.set(True)
    assert lines(out_two) == []


def test_a_log_that_cannot_be_written_is_reported_once_and_no_longer_written(
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    trace = Trace()
    reports: list[str] = []
    trace.open_log("/dev/full", on_error=reports.append)
    trace.enable("irq_set")
    with caplog.at_level(logging.DEBUG, logger="toynic.trace"):
        for level in range(5):
            trace.emit("irq_set", line="x", level=level)
    trace.close()
    assert reports == [
        "Error writing logfile /dev/full: No space left on device; trace output to it stopped"]
    # The event stays on: other handlers (here pytest's) still get every line.
    assert [r.getMessage() for r in caplog.records] == [
        f"irq_set line=x level={level}" for level in range(5)]
    assert capsys.readouterr().err == ""  # no "--- Logging error ---" tracebacks


def test_docs_list_every_event_with_its_fields() -> None:
    text = (ROOT / "docs" / "trace-events.md").read_text()
    for event in EVENTS:
        assert f"| `{event.name}` | {event.fields} |" in text, event.name
    fields_of = {e.name: set(e.fields.replace("[", "").replace("]", "").split()) for e in EVENTS}
    # A quoted line may start with the machine's virtual time, `t=NS`.
    lines = [re.sub(r"^t=\d+ ", "", line) for line in text.splitlines()]
    quoted = [line for line in lines if line.split(" ")[0] in fields_of]
    assert len(quoted) > 10
    for line in quoted:
        name, *pairs = line.split(" ")
        assert {pair.split("=", 1)[0] for pair in pairs} <= fields_of[name], line
