"""pcap capture (filter-dump): file format checked field by field and read back with scapy's
independent reader; both directions; maxlen truncation; a replaceable clock."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.utils import rdpcap

from emu.errors import UserError
from emu.opts import parse_opts
from netdev.client import NetClient
from netdev.dump import DumpFilter
from netdev.framing import RecordBatch
from netdev.net import Net


class Nic(NetClient):
    def __init__(self, name: str) -> None:
        super().__init__(name, "ne2k_isa")
        self.got: list[bytes] = []

    def receive(self, frame: bytes) -> int:
        self.got.append(frame)
        return len(frame)


def frame(tag: int, size: int = 60) -> bytes:
    return bytes.fromhex("ffffffffffff525400123456") + b"\x08\x00" + bytes([tag]) * (size - 14)


def build(net: Net, dump_opts: str) -> tuple[Nic, Nic]:
    """nicA - p0 [hub 0] p1 - nicB, with the dump filter on p0."""
    net.add_netdev(parse_opts("hubport,id=p0,hubid=0", "type"))
    net.add_netdev(parse_opts("hubport,id=p1,hubid=0", "type"))
    a, b = Nic("a"), Nic("b")
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
    raw = path.read_bytes()
    offset, records = 24, []
    while offset < len(raw):
        sec, usec, caplen, length = struct.unpack_from("<iiII", raw, offset)
        records.append((sec - dump.start_sec, usec, length, raw[offset + 16:offset + 16 + caplen]))
        offset += 16 + caplen
    assert offset == len(raw)
    assert records == [(7, 123, len(f), f[:maxlen]) for f in frames]
