"""`-icount rr=record|replay` with `-object filter-replay` (QEMU's record/replay): a ping run
recorded against a live pingd replays with the peer gone to the same console output, pcap
bytes, trace lines (virtual times included) and exit status; replaying with another guest
or a damaged rrfile is one line and status 1; console input is recorded and replayed."""

from __future__ import annotations

import dataclasses
import os
import pty
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from emu.board.rrfile import MAGIC, EndHow, Kind, encode, read_rrfile
from emu.testing import arp_request, free_port
from tests.netsupport import (
    RecordReader,
    record,
    run_toynic,
    start_toynic,
    unix_connect,
    wait_for,
    wait_listening,
)
from tests.rvasm import Asm
from tests.rvguest import echo_line, write_guest

REPO = Path(__file__).resolve().parents[2]
PINGD = str(REPO / "emu/guests/pingd.elf")
PING = str(REPO / "emu/guests/ping.elf")
PING_APPEND = "ip=10.0.0.2 peer=10.0.0.1 count=3"


@dataclass
class Recording:
    port: int
    rrfile: Path
    tmp: Path
    stdout: str
    status: int
    pcap: bytes
    trace: str


def ping_args(port: int, rrfile: Path, mode: str, pcap: Path, trace: Path,
              kernel: str = PING, append: str = PING_APPEND) -> list[str]:
    """machine B of `make demo`, recorded or replayed, its wire in a pcap, the NIC traced."""
    return ["-kernel", kernel, "-append", append,
            "-netdev", f"socket,id=n0,connect=127.0.0.1:{port}",
            "-device", "ne2k_isa,netdev=n0,mac=52:54:00:00:00:0b",
            "-icount", f"shift=0,rr={mode},rrfile={rrfile}",
            "-object", "filter-replay,id=r0,netdev=n0",
            "-object", f"filter-dump,id=d0,netdev=n0,file={pcap}",
            "-trace", "ne2000_*", "-D", str(trace)]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    tmp = tmp_path_factory.mktemp("rr")
    port = free_port()
    pingd = start_toynic("-kernel", PINGD, "-append", "ip=10.0.0.1 count=3 timeout=30",
                         "-netdev", f"socket,id=n0,listen=127.0.0.1:{port}",
                         "-device", "ne2k_isa,netdev=n0,mac=52:54:00:00:00:0a")
    with pingd:
        wait_listening(pingd.pid, port)
        rrfile = tmp / "ping.rr"
        done = run_toynic(*ping_args(port, rrfile, "record", tmp / "rec.pcap",
                                     tmp / "rec.trace"), timeout=60)
        assert pingd.wait(30) == 0, pingd.describe()
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return Recording(port, rrfile, tmp, done.stdout, done.returncode,
                     (tmp / "rec.pcap").read_bytes(), (tmp / "rec.trace").read_text())


def replay(rec: Recording, name: str, rrfile: Path | None = None, **kw: str):
    return run_toynic(*ping_args(rec.port, rrfile or rec.rrfile, "replay",
                                 rec.tmp / f"{name}.pcap", rec.tmp / f"{name}.trace", **kw),
                      timeout=60)


def test_the_recording_holds_frames_warps_and_its_end(recorded: Recording) -> None:
    header, events = read_rrfile(str(recorded.rrfile))
    kinds = [event.kind for event in events]
    # ARP reply + 3 echo replies came from pingd; ping slept in wfi waiting for them.
    assert kinds.count(Kind.FRAME) == 4
    assert Kind.WARP in kinds
    assert kinds[-1] is Kind.END and events[-1].status == 0
    assert header["append"] == PING_APPEND and header["netdevs"] == ["n0"]
    instrets = [event.at.instret for event in events]
    assert instrets == sorted(instrets)


def test_replay_without_the_peer_is_identical(recorded: Recording) -> None:
    # pingd is gone: a replay that tried to connect would report the refusal on stderr.
    done = replay(recorded, "rep")
    assert done.stderr == ""
    assert done.returncode == recorded.status == 0
    assert done.stdout == recorded.stdout
    assert "3 packets transmitted, 3 received" in done.stdout
    assert (recorded.tmp / "rep.pcap").read_bytes() == recorded.pcap
    # Whole lines: each starts with the virtual time, which replay must reproduce too.
    assert (recorded.tmp / "rep.trace").read_text() == recorded.trace
    assert "ne2000_transmit" in recorded.trace
    assert all(re.match(r"t=\d+ ne2000_", line) for line in recorded.trace.splitlines())
    assert len({line.split()[0] for line in recorded.trace.splitlines()}) > 100


def test_replay_twice_is_the_same_run(recorded: Recording) -> None:
    first, second = replay(recorded, "again1"), replay(recorded, "again2")
    assert first.stdout == second.stdout == recorded.stdout
    assert (recorded.tmp / "again1.pcap").read_bytes() == recorded.pcap
    assert (recorded.tmp / "again2.pcap").read_bytes() == recorded.pcap


@pytest.mark.parametrize(("kw", "what"), [
    ({"kernel": PINGD}, "another kernel"),
    ({"append": "ip=10.0.0.2 peer=10.0.0.1 count=2"}, "another -append"),
])
def test_replay_with_another_guest_fails_with_one_line(recorded: Recording, kw: dict[str, str],
                                                       what: str) -> None:
    done = replay(recorded, "other", **kw)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("toynic: rr=replay: ")
    assert what in done.stderr


def rewrite(rec: Recording, name: str, change) -> Path:
    """A copy of the recording with its events passed through `change(index, event)`."""
    data = rec.rrfile.read_bytes()
    header_len = struct.unpack_from("<I", data, len(MAGIC) + 2)[0]
    head = data[:len(MAGIC) + 6 + header_len]
    _, events = read_rrfile(str(rec.rrfile))
    path = rec.tmp / name
    path.write_bytes(head + b"".join(encode(change(i, e)) for i, e in enumerate(events)))
    return path


def test_a_guest_that_diverges_stops_at_the_first_unmatched_event(recorded: Recording) -> None:
    _, events = read_rrfile(str(recorded.rrfile))
    second_frame = [i for i, e in enumerate(events) if e.kind is Kind.FRAME][1]

    def move(i, event):
        if i != second_frame:
            return event
        return dataclasses.replace(event, at=dataclasses.replace(event.at, pc=event.at.pc + 4))

    done = replay(recorded, "moved", rrfile=rewrite(recorded, "moved.rr", move))
    assert done.returncode == 1
    last = done.stderr.splitlines()
    assert len(last) == 1, done.stderr
    assert last[0].startswith(f"toynic: replay diverged at event {second_frame + 1} of "
                              f"{len(events)} ")
    assert "frame from n0" in last[0]
    # The run went as recorded up to there: the ARP exchange was replayed.
    assert "10.0.0.1 is at 52:54:00:00:00:0a" in done.stdout


def test_truncated_rrfiles_are_one_line_errors(recorded: Recording) -> None:
    data = recorded.rrfile.read_bytes()
    for cut in (0, 5, len(MAGIC) + 6, len(MAGIC) + 20, len(data) // 2, len(data) - 1):
        path = recorded.tmp / f"cut{cut}.rr"
        path.write_bytes(data[:cut])
        done = replay(recorded, "cut", rrfile=path)
        assert done.returncode == 1, cut
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"toynic: rrfile {path}: "), done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("content", "message"), [
    (b"\xd4\xc3\xb2\xa1" + bytes(20), "not a toynic record/replay file"),
    (MAGIC + struct.pack("<HI", 7, 2) + b"{}", "version 7; this toynic reads version 1"),
    (MAGIC + struct.pack("<HI", 1, 3) + b"\xff\xfe!", "its header is not valid"),
])
def test_foreign_rrfiles_are_one_line_errors(recorded: Recording, content: bytes,
                                             message: str) -> None:
    path = recorded.tmp / "foreign.rr"
    path.write_bytes(content)
    done = replay(recorded, "foreign", rrfile=path)
    assert done.returncode == 1
    assert done.stderr == f"toynic: rrfile {path}: {message}\n"


def test_a_missing_rrfile_and_bad_rr_options(tmp_path: Path) -> None:
    base = ["-kernel", PING, "-append", PING_APPEND]
    cases = [
        (["-icount", f"shift=0,rr=replay,rrfile={tmp_path}/none.rr"],
         f"toynic: rrfile {tmp_path}/none.rr: can't open: No such file or directory"),
        (["-icount", "shift=0,rr=replay"], "toynic: -icount shift=0,rr=replay: "
         "rr=replay needs rrfile=FILE"),
        (["-icount", "shift=0,rr=sometimes,rrfile=x"], "toynic: -icount "
         "shift=0,rr=sometimes,rrfile=x: Parameter 'rr' expects 'off', 'record' or 'replay'"),
        (["-icount", "shift=0,rrfile=x"], "toynic: -icount shift=0,rrfile=x: "
         "rrfile= needs rr=record or rr=replay"),
        (["-netdev", "socket,id=n0,connect=127.0.0.1:9", "-device", "ne2k_isa,netdev=n0",
          "-icount", f"shift=0,rr=record,rrfile={tmp_path}/x.rr"],
         "toynic: -icount rr=record: netdev 'n0' needs -object filter-replay,id=ID,netdev=n0"),
    ]
    for args, line in cases:
        done = run_toynic(*base, *args)
        assert (done.returncode, done.stderr) == (1, line + "\n")


def echo_guest(tmp_path: Path) -> Path:
    """Polls the UART and echoes each byte until a newline, then powers off."""
    asm = Asm()
    echo_line(asm)
    return write_guest(tmp_path, asm, "echo.elf")


def test_console_input_is_recorded_and_replayed(tmp_path: Path) -> None:
    guest = echo_guest(tmp_path)
    rrfile = tmp_path / "echo.rr"
    args = ["-kernel", str(guest), "-icount", f"shift=0,rr=record,rrfile={rrfile}"]
    master, slave = pty.openpty()
    text = b"typed at the console, more than one sixteen-byte FIFO of it\n"
    try:
        proc = start_toynic(*args, stdin=slave)
        with proc:
            for start in range(0, len(text), 7):
                os.write(master, text[start:start + 7])
            status = proc.wait(30)
            recorded_out = proc.stdout
    finally:
        os.close(master)
        os.close(slave)
    assert status == 0, proc.stderr
    assert recorded_out.encode() == text
    _, events = read_rrfile(str(rrfile))
    assert b"".join(e.data for e in events if e.kind is Kind.CONSOLE) == text
    args[-1] = args[-1].replace("rr=record", "rr=replay")
    done = run_toynic(*args)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", recorded_out)


def test_a_full_disk_while_recording_is_one_line(tmp_path: Path) -> None:
    guest = echo_guest(tmp_path)
    master, slave = pty.openpty()
    try:
        proc = start_toynic("-kernel", str(guest), "-icount",
                            "shift=0,rr=record,rrfile=/dev/full", stdin=slave)
        with proc:
            os.write(master, b"hi\n")
            assert proc.wait(30) == 0
            wait_for(lambda: proc.stderr, 5, "the error line")
            assert proc.stderr == ("toynic: rrfile /dev/full: write failed: No space left on "
                                   "device; recording stopped\n")
    finally:
        os.close(master)
        os.close(slave)



def _tcp_connect(port: int) -> socket.socket | None:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return None


def _monitor(sock: socket.socket, line: str | None) -> str:
    """Send `line` (None: just read the banner); return the output up to the next prompt."""
    if line is not None:
        sock.sendall(line.encode() + b"\n")
    prompt = b"(toynic) "
    out = b""
    while not out.endswith(prompt):
        chunk = sock.recv(4096)
        assert chunk, out
        out += chunk
    return out[:-len(prompt)].decode()


def test_set_link_and_a_stopped_run_are_replayed(tmp_path: Path) -> None:
    """pingd recorded while the monitor takes its link down (an ARP request is lost) and
    up again (the next is answered), then `quit`: replayed without peer or monitor, it
    prints the same, writes the same pcap and stops at the same point, status 0."""
    port = free_port()
    rrfile, mon_path = tmp_path / "pingd.rr", tmp_path / "mon.sock"

    def args(mode: str, pcap: str) -> list[str]:
        return ["-kernel", PINGD, "-append", "ip=10.0.0.1",
                "-netdev", f"socket,id=n0,listen=127.0.0.1:{port}",
                "-device", "ne2k_isa,netdev=n0",
                "-object", "filter-replay,id=r0,netdev=n0",
                "-object", f"filter-dump,id=d0,netdev=n0,file={tmp_path / pcap}",
                "-icount", f"shift=0,rr={mode},rrfile={rrfile}"]

    peer_mac = bytes.fromhex("020000000001")
    with start_toynic(*args("record", "rec.pcap"),
                      "-monitor", f"unix:{mon_path},server,nowait") as proc:
        mon = wait_for(lambda: unix_connect(mon_path), 20, "the monitor")
        mon.settimeout(15)
        _monitor(mon, None)
        wire = wait_for(lambda: _tcp_connect(port), 20, "the netdev")
        wire.settimeout(20)
        wait_for(lambda: "answering ARP" in proc.stdout, 30, "pingd ready")
        assert _monitor(mon, "set_link n0 off") == ""
        wire.sendall(record(arp_request(peer_mac, bytes((10, 0, 0, 7)), bytes((10, 0, 0, 1)))))
        assert _monitor(mon, "info network").startswith("ne2k_isa")
        assert _monitor(mon, "set_link n0 on") == ""
        wire.sendall(record(arp_request(peer_mac, bytes((10, 0, 0, 8)), bytes((10, 0, 0, 1)))))
        reader = RecordReader()
        replies: list[bytes] = []
        while not replies:
            data = wire.recv(65536)
            assert data, proc.describe()
            replies += [f for f in reader.feed(data) if f[12:14] == b"\x08\x06"]
        assert replies[0][38:42] == bytes((10, 0, 0, 8))
        mon.sendall(b"quit\n")
        assert proc.wait(20) == 0, proc.stderr
        recorded_out = proc.stdout
        wire.close()
        mon.close()
    _, events = read_rrfile(str(rrfile))
    assert [(e.data, e.up) for e in events if e.kind is Kind.LINK] == [(b"n0", False),
                                                                       (b"n0", True)]
    assert [e.kind for e in events].count(Kind.FRAME) == 1
    assert events[-1].how is EndHow.STOPPED
    done = run_toynic(*args("replay", "rep.pcap"))
    assert (done.returncode, done.stderr, done.stdout) == (0, "", recorded_out)
    assert "ARP reply to 02:00:00:00:00:01" in done.stdout
    assert (tmp_path / "rep.pcap").read_bytes() == (tmp_path / "rec.pcap").read_bytes()
