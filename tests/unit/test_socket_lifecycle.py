"""Stream netdev lifecycle details: output handed over on close, the listening address."""

import socket

from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from emu.testing import RecordingClient
from netdev.dump import read_pcap
from netdev.net import Net


class Nic(RecordingClient):
    """A RecordingClient that the net layer takes for a guest's card."""

    kind = "nic"


def test_frame_sent_right_before_close_is_written(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    loop = MainLoop()
    net = Net(loop)
    try:
        net.add_netdev(parse_opts(f"socket,id=n0,connect=127.0.0.1:{port}", "type"))
        nic = Nic("nic0")
        net.add_nic(nic, "n0")
        net.add_object(parse_opts(f"filter-dump,id=d0,netdev=n0,file={tmp_path / 'x.pcap'}",
                                  "qom-type"))
        peer, _ = server.accept()
        peer.settimeout(10)
        peer.sendall((5).to_bytes(4, "big") + b"hello")
        assert loop.run_until(lambda: nic.received == [b"hello"], timeout=10)
        nic.send(b"last words before power-off")
        net.close()
        received = b""
        while len(received) < 4 + 27:
            chunk = peer.recv(100)
            assert chunk, "connection closed before the frame arrived"
            received += chunk
        assert received == (27).to_bytes(4, "big") + b"last words before power-off"
        assert list(read_pcap(tmp_path / "x.pcap")) == [b"hello", b"last words before power-off"]
        peer.close()
    finally:
        net.close()
        loop.close()
        server.close()


def test_listen_address_reports_the_port_the_kernel_chose():
    loop = MainLoop()
    net = Net(loop)
    try:
        netdev = net.add_netdev(parse_opts("socket,id=n0,listen=127.0.0.1:0", "type"))
        host, port = netdev.listen_address
        assert host == "127.0.0.1"
        assert port != 0
        with socket.create_connection((host, port), timeout=5) as client:
            assert loop.run_until(lambda: netdev.connected, timeout=5)
            assert netdev.info_str == f"socket: connection from 127.0.0.1:{client.getsockname()[1]}"
    finally:
        net.close()
        loop.close()
