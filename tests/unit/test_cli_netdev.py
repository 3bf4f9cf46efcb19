"""The `toynic` command line with netdevs only: seed error texts with exit status 1, and
relay mode running until SIGTERM/SIGINT, then closing every socket."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys

import pytest

from tests.netsupport import RecordReader, free_port, record, wait_for

PREFIX = "toynic: -netdev "


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize(
    ("netdev", "message"),
    [
        ("socket,id=a,listen=:1,connect=1.2.3.4:5",
         "exactly one of fd=, listen=, connect=, mcast= or udp= is required"),
        ("socket,id=a,listen=:1,localaddr=1.2.3.4", "localaddr= is only valid with mcast= or udp="),
        ("socket,id=a,udp=1.2.3.4:5", "localaddr= is mandatory with udp="),
        ("socket,id=a,listen=:1,speed=9", "Parameter 'speed' is unexpected"),
    ],
)
def test_seed_messages_exit_1(netdev: str, message: str) -> None:
    result = run("-netdev", netdev)
    assert result.returncode == 1
    assert result.stderr == f"{PREFIX}{netdev}: {message}\n"
    assert result.stdout == ""


def test_duplicate_id_exit_1() -> None:
    result = run("-netdev", "hubport,id=x,hubid=0", "-netdev", "hubport,id=x,hubid=0")
    assert result.returncode == 1
    assert result.stderr == f"{PREFIX}hubport,id=x,hubid=0: Duplicate ID 'x' for netdev\n"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_relay_runs_until_signal_and_closes_sockets(signum: int) -> None:
    pa, pb = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emu",
         "-netdev", f"socket,id=a,listen=127.0.0.1:{pa}",
         "-netdev", f"socket,id=b,listen=127.0.0.1:{pb}",
         "-netdev", "hubport,id=p0,hubid=0,netdev=a",
         "-netdev", "hubport,id=p1,hubid=0,netdev=b"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def connected(port: int) -> socket.socket | None:
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=5)
            except ConnectionRefusedError:
                return None

        b = wait_for(lambda: connected(pb), 15.0, "the relay to listen")
        a = wait_for(lambda: connected(pa), 15.0, "the relay to listen")
        frames = [b"x" * n for n in (1, 60, 1514, 65535)]
        reader = RecordReader()

        def relayed() -> bool:
            a.sendall(record(b"ping"))
            b.settimeout(0.2)
            with contextlib.suppress(TimeoutError):
                reader.feed(b.recv(1 << 16))
            return b"ping" in reader.frames

        # The second accept may lag the first: ping until the path is up.
        wait_for(relayed, 15.0, "the relay path a -> b")
        for f in frames:
            a.sendall(record(f))
        b.settimeout(10)
        wanted = [*reader.frames, *frames]
        while len(reader.frames) < len(wanted):
            data = b.recv(1 << 17)
            assert data, "relay closed early"
            reader.feed(data)
        assert [f for f in reader.frames if f != b"ping"] == frames
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert err == "toynic: warning: hub 0 with no nics\n"
        a.settimeout(5)
        assert a.recv(10) == b"", "the relay must close its sockets on exit"
        b.close()
        a.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
