"""pcap capture (filter-dump): file format checked field by field and read back with scapy's
independent reader; both directions; maxlen truncation; a replaceable clock; timestamps
past the 32-bit range; a file that fills up mid-record."""

from __future__ import annotations

import resource
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.utils import rdpcap

from emu.board.layout import TIMEBASE_HZ
from emu.core.errors import UserError
from emu.core.opts import parse_opts
from emu.testing import RecordingClient
from netdev.dump import DumpFilter
from netdev.framing import RecordBatch
from netdev.net import Net
from tests.netsupport import REPO

YEAR_S = 365 * 24 * 3600


class Nic(RecordingClient):
    """A RecordingClient that the net layer takes for a guest's card."""

    kind = "nic"


def frame(tag: int, size: int = 60) -> bytes:
    return bytes.fromhex("ffffffffffff525400123456") + b"\x08\x00" + bytes([tag]) * (size - 14)


def pcap_records(raw: bytes) -> list[tuple[int, int, int, bytes]]:
    """A strict reader: (ts_sec, ts_usec, len, data) of each record, the seconds unsigned.
    Fails unless the file is a global header and whole records up to its very last byte."""
    assert len(raw) >= 24, f"{len(raw)} bytes: no whole global header"
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from("<IHHiIII", raw)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    offset, records = 24, []
    while offset < len(raw):
        assert offset + 16 <= len(raw), f"half a record header at offset {offset}"
        sec, usec, caplen, length = struct.unpack_from("<IIII", raw, offset)
        assert usec < 1_000_000 and caplen == min(length, snaplen), (offset, usec, caplen)
        assert offset + 16 + caplen <= len(raw), f"half a record at offset {offset}"
        records.append((sec, usec, length, raw[offset + 16:offset + 16 + caplen]))
        offset += 16 + caplen
    return records


def build(net: Net, dump_opts: str) -> tuple[Nic, Nic]:
    """nicA - p0 [hub 0] p1 - nicB, with the dump filter on p0."""
    net.add_netdev(parse_opts("hubport,id=p0,hubid=0", "type"))
    net.add_netdev(parse_opts("hubport,id=p1,hubid=0", "type"))
    a, b = Nic("a", "ne2k_isa"), Nic("b", "ne2k_isa")
    net.add_nic(a, "p0")
    net.add_nic(b, "p1")
    net.add_object(parse_opts(dump_opts, "qom-type"))
    return a, b


def test_pcap_header_records_and_scapy_reader(net: Net, tmp_path: Path) -> None:
    path = tmp_path / "p0.pcap"
    a, b = build(net, f"filter-dump,id=d0,netdev=p0,file={path}")
    dump = net.dumps["d0"]
    dump.clock = lambda: 2_500_000_000  # 2.5 s of (virtual) time
    a.send(frame(1))                              # into p0 (rx for the netdev p0)
    b.send_batch(RecordBatch.from_frames([frame(2, 100), frame(3, 1514)]))  # out of p0 (tx)
    raw = path.read_bytes()
    magic, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack("<IHHiIII", raw[:24])
    assert (magic, major, minor, zone, sigfigs, snaplen, linktype) == (
        0xA1B2C3D4, 2, 4, 0, 0, 65536, 1)
    sec, usec, caplen, length = struct.unpack("<iiII", raw[24:40])
    assert (sec - dump.start_sec, usec, caplen, length) == (2, 500000, 60, 60)
    packets = rdpcap(str(path))
    assert [bytes(p) for p in packets] == [frame(1), frame(2, 100), frame(3, 1514)]
    assert all(p.wirelen == len(bytes(p)) for p in packets)


def test_maxlen_truncates_but_keeps_length(net: Net, tmp_path: Path) -> None:
    path = tmp_path / "short.pcap"
    a, _ = build(net, f"filter-dump,id=d0,netdev=p0,file={path},maxlen=20")
    a.send(frame(7, 200))
    raw = path.read_bytes()
    assert struct.unpack("<I", raw[16:20])[0] == 20
    _, _, caplen, length = struct.unpack("<iiII", raw[24:40])
    assert (caplen, length) == (20, 200)
    assert raw[40:] == frame(7, 200)[:20]
    packets = rdpcap(str(path))
    assert bytes(packets[0]) == frame(7, 200)[:20]
    assert packets[0].wirelen == 200


def test_queue_tx_only_records_frames_sent_by_the_netdev(net: Net, tmp_path: Path) -> None:
    path = tmp_path / "tx.pcap"
    a, b = build(net, f"filter-dump,id=d0,netdev=p0,file={path},queue=tx")
    a.send(frame(1))
    b.send(frame(2))
    assert [bytes(p) for p in rdpcap(str(path))] == [frame(2)]


def test_default_clock_is_wall_clock_based(tmp_path: Path) -> None:
    dump = DumpFilter("d", str(tmp_path / "t.pcap"))
    dump.observe(frame(1), True)
    dump.close()
    sec = struct.unpack("<i", (tmp_path / "t.pcap").read_bytes()[24:28])[0]
    assert abs(sec - dump.start_sec) <= 1


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ("filter-dump,id=d0,netdev=p0", "dump filter needs 'file' property set!"),
        ("filter-dump,id=d0,netdev=p0,file=/x,maxlen=0",
         "Property 'filter-dump.maxlen' doesn't take value '0'"),
        ("filter-dump,id=d0,netdev=nope,file=/x", "Property 'netdev' can't find value 'nope'"),
        ("filter-dump,id=d0,netdev=p0,file=/no/such/dir/x.pcap",
         "net dump: can't open /no/such/dir/x.pcap: No such file or directory"),
        ("filter-mirror,id=d0,netdev=p0", "invalid object type: filter-mirror"),
        ("filter-dump,id=d0,netdev=p0,file=/x,colour=red", "Parameter 'colour' is unexpected"),
    ],
)
def test_filter_dump_errors(net: Net, opts: str, message: str) -> None:
    net.add_netdev(parse_opts("hubport,id=p0,hubid=0", "type"))
    with pytest.raises(UserError) as info:
        net.add_object(parse_opts(opts, "qom-type"))
    assert str(info.value) == message


def test_net_set_clock_reaches_existing_and_later_filters(net: Net, tmp_path: Path) -> None:
    a, _ = build(net, f"filter-dump,id=d0,netdev=p0,file={tmp_path / 'a.pcap'}")
    net.set_clock(lambda: 7_000_001_000)
    net.add_object(parse_opts(f"filter-dump,id=d1,netdev=p1,file={tmp_path / 'b.pcap'}",
                              "qom-type"))
    a.send(frame(1))
    for name, dump in net.dumps.items():
        raw = Path(dump.path).read_bytes()
        sec, usec = struct.unpack("<ii", raw[24:32])
        assert (sec - dump.start_sec, usec) == (7, 1), name


@settings(max_examples=60, deadline=None)
@given(frames=st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=20),
       maxlen=st.integers(min_value=1, max_value=250), batched=st.booleans())
def test_records_read_back_as_written_with_or_without_batching(
        tmp_path_factory: pytest.TempPathFactory, frames: list[bytes], maxlen: int,
        batched: bool) -> None:
    """Batches build each distinct header once; every record must still be its own."""
    path = tmp_path_factory.mktemp("dump") / "p.pcap"
    dump = DumpFilter("d", str(path), maxlen=maxlen, clock=lambda: 7_000_123_000)
    if batched:
        dump.observe_batch(RecordBatch.from_frames(frames), True)
    else:
        for f in frames:
            dump.observe(f, True)
    dump.close()
    records = [(sec - dump.start_sec, usec, length, data)
               for sec, usec, length, data in pcap_records(path.read_bytes())]
    assert records == [(7, 123, len(f), f[:maxlen]) for f in frames]


@pytest.mark.parametrize("virtual_s", [
    14 * YEAR_S,                # past 2038: ts_sec no longer fits a signed 32-bit field
    2**32 + 5,                  # past one whole 32-bit range of seconds
    2**64 // TIMEBASE_HZ,       # the largest time a guest's 64-bit mtime can ask for
])
def test_timestamps_past_the_32_bit_range_are_written_modulo_2_32(
        tmp_path: Path, virtual_s: int) -> None:
    path = tmp_path / "late.pcap"
    dump = DumpFilter("d", str(path), clock=lambda: virtual_s * 10**9 + 250_000)
    dump.observe(frame(1), True)
    dump.observe_batch(RecordBatch.from_frames([frame(2), frame(3, 100)]), False)
    dump.close()
    sec = (dump.start_sec + virtual_s) % 2**32
    assert pcap_records(path.read_bytes()) == [
        (sec, 250, 60, frame(1)), (sec, 250, 60, frame(2)), (sec, 250, 100, frame(3, 100))]
    assert [bytes(p) for p in rdpcap(str(path))] == [frame(1), frame(2), frame(3, 100)]


# -- a file that fills up -----------------------------------------------------------------

def test_a_header_that_cannot_be_written_is_a_startup_error() -> None:
    with pytest.raises(UserError) as info:
        DumpFilter("d", "/dev/full")
    assert str(info.value) == "net dump: can't write /dev/full: No space left on device"


# File-size limits (RLIMIT_FSIZE) the child below runs under, one pcap each: inside the
# global header, inside a record header, inside frame data, and on a record boundary.
FSIZE_LIMITS = (10, 24 + 7, 24 + 16 + 30, 24 + 2 * (16 + 60), 1000, 5000, 9999)
FILL_FRAMES = [frame(n % 250, 60 + 37 * n % 1455) for n in range(40)]


def fill_under_size_limits(workdir: str) -> None:
    """Child process: for each limit in FSIZE_LIMITS, dump FILL_FRAMES (some one by one,
    some in batches) to `workdir/LIMIT.pcap` with writes past LIMIT failing (EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    for limit in FSIZE_LIMITS:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            dump = DumpFilter(f"d{limit}", f"{workdir}/{limit}.pcap", clock=lambda: 1_000)
        except UserError as err:
            print(f"toynic: {err}", file=sys.stderr)
            continue
        for start in range(0, len(FILL_FRAMES), 8):
            dump.observe(FILL_FRAMES[start], True)
            dump.observe_batch(RecordBatch.from_frames(FILL_FRAMES[start + 1:start + 8]), True)
        dump.close()
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


def test_a_full_file_ends_on_the_last_whole_record_and_says_so_once(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import sys; from tests.unit.test_dump import "
         "fill_under_size_limits as f; f(sys.argv[1])", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode == 0, child.stderr
    expected_lines = []
    for limit in FSIZE_LIMITS:
        path = tmp_path / f"{limit}.pcap"
        if limit < 24:
            expected_lines.append(f"toynic: net dump: can't write {path}: File too large")
            assert path.read_bytes() == b""
            continue
        raw = path.read_bytes()
        records = pcap_records(raw)
        assert [data for _, _, _, data in records] == FILL_FRAMES[:len(records)], limit
        assert len(raw) <= limit
        # Every record that fit is kept: the next one would have crossed the limit.
        assert len(raw) + 16 + len(FILL_FRAMES[len(records)]) > limit, limit
        assert len(rdpcap(str(path))) == len(records)
        expected_lines.append(f"toynic: filter-dump d{limit}: write to {path} failed: "
                              "File too large; dump stopped after the last whole record")
    assert child.stderr.splitlines() == expected_lines
