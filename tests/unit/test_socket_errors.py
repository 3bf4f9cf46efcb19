"""`-netdev socket` option validation and setup failures: the seed's texts word for word,
clear messages for everything else (S12, docs/quirks.md Q13/Q14)."""

from __future__ import annotations

import os
import socket

import pytest

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from netdev.net import Net
from netdev.sockaddr import parse_host_port, parse_port
from tests.netsupport import free_port, in_netns

EXACTLY_ONE = "exactly one of fd=, listen=, connect=, mcast= or udp= is required"


def add(net: Net, text: str) -> None:
    net.add_netdev(parse_opts(text, "type"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("socket,id=a,listen=:1,connect=1.2.3.4:5", EXACTLY_ONE),
        ("socket,id=a", EXACTLY_ONE),
        ("socket,id=a,fd=3,mcast=230.0.0.1:1", EXACTLY_ONE),
        ("socket,id=a,listen=:1,localaddr=127.0.0.1",
         "localaddr= is only valid with mcast= or udp="),
        ("socket,id=a,udp=127.0.0.1:5", "localaddr= is mandatory with udp="),
        ("socket,id=a,listen=1234",
         "host address '1234' doesn't contain ':' separating host from port"),
        ("socket,id=a,listen=:http", "port number 'http' is invalid"),
        ("socket,id=a,listen=:70000", "port number '70000' is out of range (0..65535)"),
        ("socket,id=a,connect=300.1.1.1:5", "host address '300.1.1.1' is not a valid IPv4 address"),
        ("socket,id=a,connect=no-such-host.invalid:5",
         "can't resolve host address 'no-such-host.invalid'"),
        ("socket,id=a,mcast=10.0.0.1:5",
         'specified mcastaddr "10.0.0.1" (0x0a000001) does not contain a multicast address'),
        ("socket,id=a,mcast=230.0.0.1:5,localaddr=nope",
         "localaddr 'nope' is not a valid IPv4 address"),
        ("socket,id=a,listen=:1,bogus=1", "Parameter 'bogus' is unexpected"),
        ("socket,id=a,fd=x", "Invalid file descriptor number 'x'"),
    ],
)
def test_validation_messages(net: Net, text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        add(net, text)
    assert str(info.value) == message


def test_port_in_use(net: Net) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        expected = rf"can't bind ip=127\.0\.0\.1:{port} to socket: Address already in use"
        with pytest.raises(UserError, match=expected):
            add(net, f"socket,id=a,listen=127.0.0.1:{port}")


def test_udp_bind_failure_names_the_address(net: Net) -> None:
    with pytest.raises(UserError, match=r"can't bind ip=192\.0\.2\.1:5 to socket: "):
        add(net, f"socket,id=a,udp=127.0.0.1:{free_port()},localaddr=192.0.2.1:5")


def test_fd_that_is_not_a_socket_is_rejected_and_left_open(net: Net, tmp_path) -> None:
    fd = os.open(tmp_path / "file", os.O_CREAT | os.O_RDWR)
    try:
        with pytest.raises(UserError, match=rf"^fd={fd} is not a socket"):
            add(net, f"socket,id=a,fd={fd}")
        os.fstat(fd)  # still open: it may belong to someone else
    finally:
        os.close(fd)


def test_closed_fd_is_rejected(net: Net) -> None:
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    with pytest.raises(UserError, match=rf"a: Can't use file descriptor {fd}: Bad file descriptor"):
        add(net, f"socket,id=a,fd={fd}")


@pytest.mark.parametrize("text", ["99999999999", "2147483648", "-1", "+3", "3x", " 3",
                                  "\u0663", "9" * 5000])
def test_fd_numbers_are_c_ints_in_ascii_digits(net: Net, text: str) -> None:
    with pytest.raises(UserError, match=r"^Invalid file descriptor number '"):
        add(net, f"socket,id=a,fd={text}")


def test_the_loops_own_descriptors_are_refused_and_left_alone(net: Net) -> None:
    own = net.loop.own_fds()
    # epoll and the two ends of the wakeup socketpair signals arrive through
    assert len(own) == 3
    for fd in sorted(own):
        with pytest.raises(UserError, match=f"^fd={fd} is a descriptor of toynic's event loop"):
            add(net, f"socket,id=a,fd={fd}")
        os.fstat(fd)
    # The loop still wakes up through its self-pipe.
    woke: list[bool] = []
    net.loop.aio.call_soon_threadsafe(woke.append, True)
    assert net.loop.run_until(lambda: bool(woke), 10.0)
    assert net.clients == []


def test_another_netdevs_socket_is_refused(net: Net) -> None:
    listener = net.add_netdev(parse_opts("socket,id=l,listen=127.0.0.1:0", "type"))
    (fd,) = listener.owned_fds()
    with pytest.raises(UserError, match=f"^fd={fd} is a socket of netdev l, not a socket"):
        add(net, f"socket,id=a,fd={fd}")
    assert listener.listen_address is not None  # still listening


def test_listening_socket_fd_is_refused(net: Net) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    fd = listener.detach()
    with pytest.raises(UserError, match=f"^fd={fd} is a listening socket; fd= takes a connected"):
        add(net, f"socket,id=a,fd={fd}")
    assert net.clients == []


def test_unix_dgram_fd_cannot_be_cloned(net: Net) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    fd = ours.detach()
    with pytest.raises(UserError, match=rf"init_dgram: fd={fd} is not an IPv4 socket"):
        add(net, f"socket,id=a,fd={fd}")
    theirs.close()


def _unbound_dgram_fd() -> str:
    loop = MainLoop()
    net = Net(loop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    try:
        net.add_netdev(parse_opts(f"socket,id=a,fd={sock.detach()}", "type"))
    except UserError as err:
        return str(err)
    finally:
        net.close()
        loop.close()
    return "no error"


def test_unbound_dgram_fd_rejected_as_in_seed() -> None:
    message = in_netns(_unbound_dgram_fd)
    assert message.endswith("unbound, cannot setup multicast dst addr")


def test_address_parsing_follows_inet_aton_and_strtol() -> None:
    assert parse_host_port(":0x50") == ("0.0.0.0", 80)
    assert parse_host_port("127.1:010") == ("127.0.0.1", 8)
    assert parse_host_port("localhost:1234abc") == ("127.0.0.1", 1234)
    assert parse_port(" +22") == 22
    with pytest.raises(UserError, match="out of range"):
        parse_port("-1")


@pytest.mark.parametrize(("text", "message"), [
    ("a..b:1", "host address 'a..b' is not a valid host name (empty label)"),
    (".:1", "host address '.' is not a valid host name (empty label)"),
    ("a" * 64 + ":1", f"host address '{'a' * 64}' is not a valid host name "
                      "(a label is longer than 63 characters)"),
    ("a b:1", "host address 'a b' is not a valid host name (space or control character)"),
    ("a\0b:1", "host address 'a\\x00b' is not a valid host name (space or control character)"),
    ("\udcff:1", "host address '\\udcff' is not a valid host name (not a name IDNA can encode)"),
    ("1\udcff:1", "host address '1\\udcff' is not a valid IPv4 address"),
    ("1\0:1", "host address '1\\x00' is not a valid IPv4 address"),
    (":" + "9" * 5000, f"port number '{'9' * 40}...(5000 characters)' is out of range (0..65535)"),
    (":0x10000", "port number '0x10000' is out of range (0..65535)"),
])
def test_malformed_host_names_and_ports_are_user_errors(text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_host_port(text)
    assert str(info.value) == message


def test_port_length_limit_keeps_strtol_octal() -> None:
    assert parse_port("0177777") == 65535
    assert parse_port("0000000000080") == 0  # strtol: octal 0..., stops at the 8


def test_mcast_localaddr_must_be_a_literal_ipv4_address(net):
    with pytest.raises(UserError, match=r"^localaddr 'foo' is not a valid IPv4 address$"):
        add(net, "socket,id=a,mcast=230.0.0.1:1234,localaddr=foo")
    with pytest.raises(UserError, match=r"^localaddr '127.0.0.1:5' is not a valid IPv4 address$"):
        add(net, "socket,id=b,mcast=230.0.0.1:1234,localaddr=127.0.0.1:5")
