"""emu.tracetool.parse: today's trace lines, and the optional virtual time and machine
name of a deterministic lab's merged trace."""

from __future__ import annotations

import pytest

from emu.tracetool.parse import TraceError, load, parse_line, parse_time
from tests.tracetool.support import recording, timed_merge

LINE = "ne2000_transmit nic=ne2k_isa.0 len=98 tpsr=0x40"
FIELDS = {"nic": "ne2k_isa.0", "len": "98", "tpsr": "0x40"}


def test_todays_line_has_no_time_and_no_machine():
    assert parse_line(LINE) == ("ne2000_transmit", FIELDS, None, None)


@pytest.mark.parametrize(("line", "time_ns", "machine"), [
    (f"t=1500 machine=A {LINE}", 1500, "A"),
    (f"vt=2ms [B] {LINE}", 2_000_000, "B"),
    (f"12.5us A: {LINE}", 12_500, "A"),
    (f"0.000003 pingd {LINE}", 3_000, "pingd"),
    (f"4242@1.000002:{LINE}", 1_000_002_000, None),
    (f"{LINE} machine=A t=7", 7, "A"),
    (f"machine=B {LINE} time_ns=9", 9, "B"),
])
def test_optional_time_and_machine(line, time_ns, machine):
    assert parse_line(line) == ("ne2000_transmit", FIELDS, time_ns, machine)


@pytest.mark.parametrize("line", [
    "", "hello", "hello world", "toynic: warning: hub 0 with no nics",
    "ne2000_transmit garbage", "1 2 3 4 ne2000_transmit len=1", "\x00\xff ne2000",
])
def test_lines_that_are_not_events(line):
    assert parse_line(line) is None


def test_units():
    assert [parse_time(t) for t in ("5", "5ns", "5us", "5µs", "5ms", "5s", "0.5", "x")] == [
        5, 5, 5_000, 5_000, 5_000_000, 5_000_000_000, 500_000_000, None]


def test_files_name_machines_and_pcaps_give_bytes():
    inputs = load(recording())
    assert inputs.machines == ["B", "A"]
    assert len(inputs.captures) == 1 and len(inputs.captures[0]) == 4
    assert {e.machine for e in inputs.events} == {"A", "B"}
    # Each line starts with its machine's virtual time, `t=NS`.
    assert all(e.time_ns is not None for e in inputs.events)


def test_a_merged_trace_names_its_machines_itself(tmp_path):
    merged = tmp_path / "lab.trace"
    merged.write_text(timed_merge(recording()))
    inputs = load([str(merged)])
    assert inputs.machines == ["B", "A"] or inputs.machines == ["A", "B"]
    assert all(e.time_ns is not None for e in inputs.events)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b"\n  \n", "empty file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "no trace events"),
    (b"hello world\nthis is not a trace\n", "no trace events"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "not a pcap file"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.trace"
    path.write_bytes(content)
    with pytest.raises(TraceError, match=message):
        load([str(path)])


def test_a_directory_or_a_missing_file(tmp_path):
    with pytest.raises(TraceError, match="is a directory"):
        load([str(tmp_path)])
    with pytest.raises(TraceError, match="No such file"):
        load([str(tmp_path / "nope.trace")])
