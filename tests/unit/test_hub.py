"""Hubs: every other port gets each frame, a slow port paces the hub without loss or
reordering, `info network`, the startup warnings and `set_link` in QEMU's wording."""

from __future__ import annotations

import contextlib
import socket
import struct

import pytest

from emu.core.errors import UserError
from emu.core.opts import parse_opts
from netdev.client import NetClient
from netdev.framing import RecordBatch
from netdev.hub import HubPort
from netdev.net import Net
from netdev.socket_stream import StreamSocket
from tests.netsupport import RecordReader, free_port, records

TIMEOUT = 10.0


class Nic(NetClient):
    kind = "nic"

    def __init__(self, name: str) -> None:
        super().__init__(name, "ne2k_isa")
        self.info_str = "model=ne2k_isa,macaddr=52:54:00:12:34:56"
        self.got: list[bytes] = []
        self.room = 1 << 30

    def can_receive(self) -> bool:
        return self.room > 0

    def receive(self, frame: bytes) -> int:
        if self.room <= 0:
            return 0
        self.room -= 1
        self.got.append(frame)
        return len(frame)


def add(net: Net, text: str) -> NetClient:
    return net.add_netdev(parse_opts(text, "type"))


def hub_with_nics(net: Net, count: int) -> list[Nic]:
    nics = []
    for i in range(count):
        add(net, f"hubport,id=p{i},hubid=0")
        nic = Nic(f"nic{i}")
        net.add_nic(nic, f"p{i}")
        nics.append(nic)
    return nics


def test_frame_goes_to_every_other_port_not_back(net: Net) -> None:
    a, b, c = hub_with_nics(net, 3)
    a.send(b"from a")
    c.send_batch(RecordBatch.from_frames([b"c1", b"c2"]))
    assert a.got == [b"c1", b"c2"]
    assert b.got == [b"from a", b"c1", b"c2"]
    assert c.got == [b"from a"]


def test_slow_port_paces_the_hub_without_loss_or_reordering(net: Net) -> None:
    fast, slow, sender = hub_with_nics(net, 3)
    slow.room = 2
    done: list[int] = []
    results = [sender.send_async(bytes([i]) * 10, lambda _c, n: done.append(n)) for i in range(6)]
    # The hub stopped taking frames once the slow port's NIC was full.
    assert results[:3] == [10, 10, 0]
    assert results[3:] == [0, 0, 0]
    assert fast.got == [bytes([i]) * 10 for i in range(2)]
    assert slow.got == fast.got
    sender_port = net.find_netdev("p2")
    assert isinstance(sender_port, HubPort)
    assert not sender_port.can_receive()
    slow.room = 100
    slow.flush_queued()
    expected = [bytes([i]) * 10 for i in range(6)]
    assert fast.got == expected
    assert slow.got == expected
    assert len(done) == 4


def test_info_network_lists_hub_ports_with_their_peers(net: Net) -> None:
    port = free_port()
    add(net, f"socket,id=a,listen=127.0.0.1:{port}")
    add(net, "hubport,id=p0,hubid=0,netdev=a")
    add(net, "hubport,id=p1,hubid=0")
    nic = Nic("nic0")
    net.add_nic(nic, "p1")
    add(net, f"socket,id=lonely,listen=127.0.0.1:{free_port()}")
    assert net.info_network() == "\n".join([
        "hub 0",
        " \\ p1: nic0: index=0,type=nic,model=ne2k_isa,macaddr=52:54:00:12:34:56",
        " \\ p0: a: index=0,type=socket,",
        "lonely: index=0,type=socket,",
    ])


def test_nic_with_direct_netdev_is_listed_with_its_peer(net: Net) -> None:
    add(net, f"socket,id=s,listen=127.0.0.1:{free_port()}")
    net.add_nic(Nic("nic0"), "s")
    assert net.info_network() == (
        "nic0: index=0,type=nic,model=ne2k_isa,macaddr=52:54:00:12:34:56\n"
        " \\ s: index=0,type=socket,"
    )


def test_startup_warnings(net: Net) -> None:
    add(net, f"socket,id=a,listen=127.0.0.1:{free_port()}")
    add(net, "hubport,id=p0,hubid=0,netdev=a")
    add(net, "hubport,id=p1,hubid=0")
    add(net, "hubport,id=q0,hubid=1")
    net.add_nic(Nic("nic1"), "q0")
    add(net, f"socket,id=b,listen=127.0.0.1:{free_port()}")
    assert net.startup_warnings() == [
        "hub 1 is not connected to host network",
        "hub port p1 has no peer",
        "hub 0 with no nics",
        "netdev p1 has no peer",
        "netdev b has no peer",
    ]


def test_set_link_takes_a_nic_peer_along_but_not_a_hub_port(net: Net) -> None:
    """QEMU's qmp_set_link: a client's link, and its peer's only when that is a NIC."""
    port = add(net, "hubport,id=p0,hubid=0")
    nic = Nic("nic0")
    net.add_nic(nic, "p0")
    net.set_link("p0", False)
    assert port.link_down and nic.link_down
    net.set_link("p0", True)
    assert not port.link_down and not nic.link_down
    net.set_link("nic0", False)
    assert nic.link_down and not port.link_down
    with pytest.raises(UserError, match=r"^Device 'nope' not found$"):
        net.set_link("nope", True)


def test_hubport_errors(net: Net) -> None:
    with pytest.raises(UserError, match="Parameter 'hubid' is missing"):
        add(net, "hubport,id=p0")
    with pytest.raises(UserError, match="can't find value 'nope'"):
        add(net, "hubport,id=p0,hubid=0,netdev=nope")
    add(net, f"socket,id=a,listen=127.0.0.1:{free_port()}")
    add(net, "hubport,id=p0,hubid=0,netdev=a")
    with pytest.raises(UserError, match="can't take value 'a', it's in use"):
        add(net, "hubport,id=p1,hubid=0,netdev=a")


HUB_LOOPS = [
    # a port peered with a port of its own hub
    (["hubport,id=h0,hubid=0", "hubport,id=h1,hubid=0,netdev=h0"], "hub 0 -> hub 0"),
    # two links between the same two hubs
    (["hubport,id=h0,hubid=0", "hubport,id=h1,hubid=1,netdev=h0",
      "hubport,id=h2,hubid=1", "hubport,id=h3,hubid=0,netdev=h2"], "hub 0 -> hub 1 -> hub 0"),
    # a ring of three hubs
    (["hubport,id=a0,hubid=0", "hubport,id=b0,hubid=1,netdev=a0",
      "hubport,id=b1,hubid=1", "hubport,id=c0,hubid=2,netdev=b1",
      "hubport,id=c1,hubid=2", "hubport,id=a1,hubid=0,netdev=c1"],
     "hub 0 -> hub 2 -> hub 1 -> hub 0"),
]


@pytest.mark.parametrize(("texts", "path"), HUB_LOOPS)
def test_a_loop_of_hubs_is_refused(net: Net, texts: list[str], path: str) -> None:
    for text in texts[:-1]:
        add(net, text)
    ports_before = {hub.id: len(hub.ports) for hub in net.hubs.values()}
    with pytest.raises(UserError, match=f"the hubs would form a loop \\({path}\\)"):
        add(net, texts[-1])
    # Refused before anything was built: no new port, no half-made peering.
    assert {hub.id: len(hub.ports) for hub in net.hubs.values()} == ports_before
    last_peer = texts[-1].rsplit("netdev=", 1)[1]
    assert net.find_netdev(last_peer).peer is None


def test_a_hubport_cannot_name_itself(net: Net) -> None:
    with pytest.raises(UserError, match="can't find value 'h0'"):
        add(net, "hubport,id=h0,hubid=0,netdev=h0")
    assert net.hubs == {}


def test_a_tree_of_hubs_carries_frames_without_looping(net: Net) -> None:
    """hub 0 - hub 1 - hub 2 in a chain (no loop): a frame from a NIC on hub 0 reaches
    the NICs on hubs 1 and 2 exactly once."""
    for text in ["hubport,id=a0,hubid=0", "hubport,id=b0,hubid=1,netdev=a0",
                 "hubport,id=b1,hubid=1", "hubport,id=c0,hubid=2,netdev=b1",
                 "hubport,id=an,hubid=0", "hubport,id=bn,hubid=1", "hubport,id=cn,hubid=2"]:
        add(net, text)
    nics = {name: Nic(name) for name in ("an", "bn", "cn")}
    for name, nic in nics.items():
        net.add_nic(nic, name)
    nics["an"].send(b"hello")
    assert [nic.got for nic in nics.values()] == [[], [b"hello"], [b"hello"]]


def test_stream_relay_through_hub_with_a_slow_reader(net: Net) -> None:
    """Two listen= sockets on one hub; the reading side is slow (tiny window, reads only
    now and then): every frame arrives byte-exact, in order, with bounded buffering."""
    pa, pb = free_port(), free_port()
    a = add(net, f"socket,id=a,listen=127.0.0.1:{pa}")
    b = add(net, f"socket,id=b,listen=127.0.0.1:{pb}")
    add(net, "hubport,id=p0,hubid=0,netdev=a")
    add(net, "hubport,id=p1,hubid=0,netdev=b")
    assert isinstance(a, StreamSocket) and isinstance(b, StreamSocket)
    loop = net.loop
    reader_sock = socket.socket()
    reader_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    reader_sock.connect(("127.0.0.1", pb))
    writer = socket.create_connection(("127.0.0.1", pa))
    assert loop.run_until(lambda: a.connected and b.connected, TIMEOUT)
    frames = [struct.pack(">I", i) + bytes([i & 0xFF]) * (i % 1500) for i in range(4000)]
    blob = records(frames)
    writer.setblocking(False)
    reader_sock.setblocking(False)
    reader = RecordReader()
    sent = 0
    rounds = 0
    peak_queue = 0
    while len(reader.frames) < len(frames) and rounds < 20000:
        rounds += 1
        if sent < len(blob):
            with contextlib.suppress(BlockingIOError):
                sent += writer.send(blob[sent:sent + 65536])
        loop.run_once(0.001)
        peak_queue = max(peak_queue, len(net.find_netdev("p0").incoming_queue))
        if rounds % 4 == 0:  # a slow reader
            with contextlib.suppress(BlockingIOError):
                reader.feed(reader_sock.recv(16384))
    assert reader.frames == frames
    assert b.stats.output_discarded == 0
    # Buffered frames stay bounded by one receive batch, not by the input size.
    assert peak_queue < 1000
    writer.close()
    reader_sock.close()
