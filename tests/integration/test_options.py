"""Option errors of `toynic -netdev socket,...` (QEMU: net_init_socket's validation and
the socket setup failures of net/socket.c): each is exactly one line on stderr, exit
status 1, no traceback. The three validation texts are the seed's, word for word."""

from __future__ import annotations

import os
import socket

import pytest

from tests.netsupport import LOOPBACK, free_port, run_toynic


def one_line_error(*args: str, pass_fds: tuple[int, ...] = ()) -> str:
    result = run_toynic(*args, pass_fds=pass_fds)
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


SEED_MESSAGES = [
    ("socket,id=a,listen=:1,connect=1.2.3.4:5",
     "exactly one of fd=, listen=, connect=, mcast= or udp= is required"),
    ("socket,id=a", "exactly one of fd=, listen=, connect=, mcast= or udp= is required"),
    ("socket,id=a,fd=3,mcast=230.0.0.1:5000",
     "exactly one of fd=, listen=, connect=, mcast= or udp= is required"),
    ("socket,id=a,listen=127.0.0.1:1,localaddr=127.0.0.1",
     "localaddr= is only valid with mcast= or udp="),
    ("socket,id=a,connect=127.0.0.1:1,localaddr=127.0.0.1:2",
     "localaddr= is only valid with mcast= or udp="),
    ("socket,id=a,udp=127.0.0.1:5", "localaddr= is mandatory with udp="),
]


@pytest.mark.parametrize(("text", "message"), SEED_MESSAGES)
def test_seed_validation_messages(text: str, message: str) -> None:
    assert one_line_error("-netdev", text) == f"toynic: -netdev {text}: {message}"


@pytest.mark.parametrize(("text", "word"), [
    ("socket,id=a,listen=127.0.0.1:1,bogus=1", "bogus"),
    ("socket,id=a,listen=127.0.0.1", ""),
    ("socket,id=a,listen=127.0.0.1:notaport", ""),
    ("socket,id=a,connect=300.1.2.3:5", ""),
    ("socket,id=a,udp=127.0.0.1:5,localaddr=127.0.0.1", ""),
    ("socket,id=a,mcast=10.1.2.3:5000", "multicast"),
    ("socket,id=a,mcast=127.0.0.1:5000,localaddr=127.0.0.1", "multicast"),
    ("socket,id=a,mcast=230.0.0.1:5000,localaddr=bogus", ""),
    ("socket,id=a,fd=987", ""),
    ("socket,id=a,fd=notanumber", ""),
])
def test_bad_options_and_addresses(text: str, word: str) -> None:
    line = one_line_error("-netdev", text)
    assert line.startswith(f"toynic: -netdev {text}: ")
    assert word in line


def test_port_in_use() -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind((LOOPBACK, port))
        holder.listen(1)
        text = f"socket,id=a,listen={LOOPBACK}:{port}"
        assert one_line_error("-netdev", text).startswith(f"toynic: -netdev {text}: ")


def test_fd_that_is_not_a_socket() -> None:
    r, w = os.pipe()
    try:
        text = f"socket,id=a,fd={r}"
        line = one_line_error("-netdev", text, pass_fds=(r,))
        assert line.startswith(f"toynic: -netdev {text}: ")
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("args", [
    ["-netdev", "socket,listen=127.0.0.1:1"],
    ["-netdev", "nosuchtype,id=x"],
    ["-netdev", "hubport,id=p,hubid=0,netdev=nothere"],
    ["-netdev", "socket,id=a,listen=127.0.0.1:1", "-netdev", "socket,id=a,listen=127.0.0.1:2"],
])
def test_other_netdev_mistakes(args: list[str]) -> None:
    assert one_line_error(*args).startswith("toynic: ")
