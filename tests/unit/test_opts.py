"""`-netdev` option handling in Net: ids, types, unknown keys, `,,` escapes, teardown."""

from __future__ import annotations

import os

import pytest

from emu.core.errors import UserError
from emu.core.opts import parse_opts
from netdev.net import Net
from tests.netsupport import free_port


def add(net: Net, text: str) -> None:
    net.add_netdev(parse_opts(text, "type"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("socket,listen=:1", "Parameter 'id' is missing"),
        ("l2tpv3,id=t", "Parameter 'type' does not accept value 'l2tpv3'"),
        ("hubport,id=h,hubid=0,listen=:1", "Parameter 'listen' is unexpected"),
        ("hubport,id=h,hubid=zero", "Parameter 'hubid' expects a number, not 'zero'"),
    ],
)
def test_netdev_option_errors(net: Net, text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        add(net, text)
    assert str(info.value) == message


def test_duplicate_netdev_id_rejected(net: Net) -> None:
    add(net, "hubport,id=x,hubid=0")
    with pytest.raises(UserError, match="Duplicate ID 'x' for netdev"):
        add(net, "hubport,id=x,hubid=1")


def test_escaped_comma_stays_in_a_value() -> None:
    assert parse_opts("filter-dump,id=d,file=a,,b.pcap", "qom-type").get("file") == "a,b.pcap"


@pytest.mark.parametrize("name", ["a", "Z9", "a.b-c_d", "n0"])
def test_ids_of_letters_digits_dash_dot_underscore_are_accepted(net: Net, name: str) -> None:
    add(net, f"hubport,id={name},hubid=0")
    assert net.find_netdev(name).name == name


@pytest.mark.parametrize("name", ["", "a b", "1a", "-a", "_a", ".a", "a!", "a,,b", "a/b",
                                  "\u00e9", "a\u0301", "\udcff"])
def test_ids_qemu_refuses_are_refused(net: Net, name: str) -> None:
    with pytest.raises(UserError, match=r"^Parameter 'id' expects an identifier"):
        add(net, f"hubport,id={name},hubid=0")
    assert net.clients == []


def test_object_ids_follow_the_same_rule(net: Net, tmp_path) -> None:
    add(net, "hubport,id=h,hubid=0")
    with pytest.raises(UserError, match=r"^Parameter 'id' expects an identifier"):
        net.add_object(parse_opts(f"filter-dump,id=9d,netdev=h,file={tmp_path}/d.pcap",
                                  "qom-type"))
    assert net.dumps == {}


def test_find_netdev_names_the_missing_id(net: Net) -> None:
    with pytest.raises(UserError, match="Property 'netdev' can't find value 'ghost'"):
        net.find_netdev("ghost")


def test_close_releases_every_socket_and_is_idempotent(net: Net) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for i in range(5):
        add(net, f"socket,id=s{i},listen=127.0.0.1:{free_port()}")
    assert len(os.listdir("/proc/self/fd")) == before + 5
    net.close()
    net.close()
    assert len(os.listdir("/proc/self/fd")) == before
