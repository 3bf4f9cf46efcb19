"""`-trace` and `-D` as a user types them (QEMU: trace/control.c, the log backend): a
two-machine ping traced with `-trace 'ne2000_*'` reads like the datasheet, every line
stamped with the machine's virtual time, socket events
go to the `-D` file and nowhere else, unknown names warn as QEMU's do, events files work,
and events "files" that never end are refused in one line.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from pathlib import Path

import pytest

from emu.core.trace import EVENT_NAMES
from tests.netsupport import (
    REPO,
    Proc,
    free_port,
    run_toynic,
    start_toynic,
    toynic_argv,
    wait_listening,
)

BIN = REPO / "emu" / "guests"
PINGD = ("-kernel", str(BIN / "pingd.elf"), "-append", "ip=10.0.0.1 count=1 timeout=20")
PING = ("-kernel", str(BIN / "ping.elf"), "-append",
        "ip=10.0.0.2 peer=10.0.0.1 count=1 timeout=5")


def nic(netdev: str, mac_last: int) -> tuple[str, ...]:
    return ("-device", f"ne2k_isa,netdev=n0,mac=52:54:00:00:00:{mac_last:02x}",
            "-netdev", f"socket,id=n0,{netdev}")


def ping_pair(pingd_trace: tuple[str, ...], ping_trace: tuple[str, ...]) -> tuple[Proc, Proc]:
    """Run pingd (listening) and ping (connecting) to completion; both must exit 0."""
    port = free_port()
    a = start_toynic(*PINGD, *nic(f"listen=127.0.0.1:{port}", 0x0A), *pingd_trace)
    try:
        wait_listening(a.pid, port)
        b = start_toynic(*PING, *nic(f"connect=127.0.0.1:{port}", 0x0B), *ping_trace)
        try:
            assert b.wait(60) == 0, b.describe()
            assert a.wait(60) == 0, a.describe()
        except BaseException:
            b.close()
            raise
    except BaseException:
        a.close()
        raise
    return a, b


def events(text: str) -> list[tuple[str, dict[str, str]]]:
    """Trace lines as (event, fields); every line must be one event in the registry,
    after `t=NS`, the machine's virtual time, which never goes back."""
    parsed = []
    last_ns = 0
    for line in text.splitlines():
        stamp, name, *pairs = line.split(" ")
        assert re.fullmatch(r"t=\d+", stamp), line
        assert int(stamp[2:]) >= last_ns, line
        last_ns = int(stamp[2:])
        assert name in EVENT_NAMES, line
        fields = dict(pair.split("=", 1) for pair in pairs)
        parsed.append((name, fields))
    return parsed


def test_ne2000_trace_of_a_ping_follows_the_datasheet(tmp_path: Path) -> None:
    a, b = ping_pair((), ("-trace", "ne2000_*"))
    with a, b:
        assert a.stderr == ""
        trace = events(b.stderr)
    assert {name for name, _ in trace} <= {n for n in EVENT_NAMES if n.startswith("ne2000_")}
    writes = [f for name, f in trace if name == "ne2000_ioport_write"]
    regs = {f["reg"] for f in writes}
    assert {"CR", "TPSR", "TBCR0", "TBCR1", "RSAR0", "RSAR1", "RBCR0", "RBCR1", "PSTART",
            "PSTOP", "BNRY", "IMR", "ISR", "PAR0", "CURR"} <= regs
    # The page is the one CR selected: PAR/CURR are page-1 registers, TPSR page 0.
    assert all(f["page"] == "1" for f in writes if f["reg"] in ("PAR0", "CURR"))
    assert all(f["page"] == "0" for f in writes if f["reg"] == "TPSR")
    assert all(re.fullmatch(r"0x[0-9a-f]{2}", f["val"]) for f in writes)
    starts = [f for f in writes if f["reg"] == "CR" and "TXP" in f["bits"].split("|")]
    assert starts, "the driver never set CR.TXP"
    sent = [f for name, f in trace if name == "ne2000_transmit"]
    received = [f for name, f in trace if name == "ne2000_receive"]
    # ARP request + echo request out; ARP reply + echo reply in (56 data bytes: 98).
    assert len(sent) >= 2 and any(f["len"] == "98" for f in sent)
    assert any(f["len"] == "98" for f in received)
    for f in received:
        before, after = f["curr"].split("->")
        assert int(f["pages"]) >= 1 and int(before, 16) != int(after, 16)
    assert any(name == "ne2000_dma_start" and f["dir"] == "write" for name, f in trace)
    assert any(name == "ne2000_dma_done" and f["width"] == "2" for name, f in trace)


def test_socket_trace_goes_to_the_D_file_only(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    a, b = ping_pair(("-trace", "net_socket_*", "-D", str(log)), ())
    with a, b:
        assert a.stderr == "" and b.stderr == ""
    trace = events(log.read_text())
    names = {name for name, _ in trace}
    assert {"net_socket_accept", "net_socket_read", "net_socket_write",
            "net_socket_disconnect"} <= names
    assert names <= {n for n in EVENT_NAMES if n.startswith("net_socket_")}
    read = sum(int(f["frames"]) for name, f in trace if name == "net_socket_read")
    assert read >= 2  # ARP request and echo request from ping
    assert all(f["netdev"] == "n0" for _, f in trace)


def test_unknown_event_warns_like_qemu_and_globs_do_not() -> None:
    result = run_toynic("-kernel", str(BIN / "hello.elf"), "-trace", "no_such_event",
                        "-trace", "no_such_*", "-trace", "-ne2000_receive")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "toynic: -trace no_such_event: warning: trace event 'no_such_event' does not exist"]


def test_events_file_with_comments(tmp_path: Path) -> None:
    events_file = tmp_path / "events"
    events_file.write_text("# what to watch\n\nne2000_ioport_write\nbogus_event\n")
    log = tmp_path / "log"
    a, b = ping_pair((), ("-trace", f"events={events_file}", "-D", str(log)))
    with a, b:
        assert b.stderr.splitlines() == [
            f"toynic: {events_file}:4: warning: trace event 'bogus_event' does not exist"]
    trace = events(log.read_text())
    assert trace and {name for name, _ in trace} == {"ne2000_ioport_write"}


def test_trace_help_lists_every_event() -> None:
    result = run_toynic("-trace", "help")
    assert result.returncode == 0
    assert result.stdout.splitlines() == list(EVENT_NAMES)


@pytest.mark.parametrize(("args", "message"), [
    (("-trace", "events=/nonexistent/events"),
     "toynic: -trace events=/nonexistent/events: /nonexistent/events: "
     "No such file or directory"),
    (("-trace", "ne2000_*", "-D", "/nonexistent/dir/log"),
     "toynic: Error opening logfile /nonexistent/dir/log: No such file or directory"),
    (("-trace", "enable=ne2000_*,colour=on"),
     "toynic: -trace enable=ne2000_*,colour=on: Invalid parameter 'colour'"),
])
def test_bad_trace_options_are_one_line_errors(args: tuple[str, ...], message: str) -> None:
    result = run_toynic(*args)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [message]


def _cap_memory() -> None:
    # An events file read without bound (/dev/zero) must fail this test, not the machine.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("kind", ["/dev/zero", "/dev/urandom", "fifo", "directory", "2 MiB"])
def test_events_file_that_is_not_a_small_regular_file_is_one_line(
        tmp_path: Path, kind: str) -> None:
    reason = "not a regular file"
    if kind.startswith("/dev/"):
        path = Path(kind)
    elif kind == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)  # nobody ever writes: reading it would wait forever
    elif kind == "directory":
        path = tmp_path
    else:
        path = tmp_path / "big"
        path.write_text("# a comment line\n" * (2 << 16))
        reason = "larger than 1 MiB, the limit for an events file"
    result = subprocess.run(
        toynic_argv("-kernel", str(BIN / "hello.elf"), "-trace", f"events={path}"),
        cwd=REPO, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        preexec_fn=_cap_memory, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [f"toynic: -trace events={path}: {path}: {reason}"]
