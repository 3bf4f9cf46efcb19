"""`-monitor` on the command line: tcp/unix/stdio chardevs, `info network` against what a
real QEMU 7.2 prints for the same options, set_link over the wire, bad commands, quit."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from emu.testing import arp_request
from tests.netsupport import (
    LOOPBACK,
    REPO,
    RecordReader,
    free_ports,
    record,
    start_qemu,
    start_toynic,
    toynic_argv,
    unix_connect,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)

PROMPT = b"(toynic) "
GUEST_MAC = bytes.fromhex("525400123456")
PEER_MAC = bytes.fromhex("020000000001")
PINGD_IP = bytes((10, 0, 0, 1))


class MonitorClient:
    """A test's monitor connection: send a command, get its output up to the prompt."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(15)
        self.buf = b""
        self.banner = self._until_prompt()

    def _until_prompt(self) -> str:
        while PROMPT not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"monitor closed; got {self.buf!r}")
            self.buf += chunk
        text, self.buf = self.buf.split(PROMPT, 1)
        return text.decode()

    def cmd(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\n")
        return self._until_prompt()

    def quit(self) -> bytes:
        self.sock.sendall(b"quit\n")
        rest = b""
        while chunk := self.sock.recv(4096):
            rest += chunk
        return rest


def connect_tcp(port: int, proc: object) -> MonitorClient:
    def attempt() -> socket.socket | None:
        try:
            return socket.create_connection((LOOPBACK, port), timeout=1)
        except OSError:
            return None
    return MonitorClient(wait_for(attempt, 20, f"monitor port {port} of {proc}"))


def test_tcp_monitor_info_network_errors_and_quit_status_0() -> None:
    net_port, mon_port = free_ports(2)
    with start_toynic("-netdev", f"socket,id=n0,listen={LOOPBACK}:{net_port}",
                      "-netdev", "hubport,id=p0,hubid=0,netdev=n0",
                      "-netdev", "hubport,id=p1,hubid=0",
                      "-monitor", f"tcp:{LOOPBACK}:{mon_port},server,nowait") as proc:
        mon = connect_tcp(mon_port, proc)
        assert "toynic monitor - type 'help' for more information" in mon.banner
        assert mon.cmd("info network") == (
            "hub 0\r\n \\ p1\r\n \\ p0: n0: index=0,type=socket,\r\n")
        assert mon.cmd("nonsense") == "unknown command: 'nonsense'\r\n"
        assert mon.cmd("set_link zz off") == "Error: Device 'zz' not found\r\n"
        assert mon.cmd("info registers") == "unknown command: 'info registers'\r\n"
        assert mon.quit() == b""
        assert proc.wait(20) == 0, proc.stderr


def test_unix_monitor_set_link_stops_and_restores_a_guest(tmp_path: Path) -> None:
    """pingd answers ARP over the wire; with its link off a request is lost both ways,
    with it back on the next one is answered (replies keep order, so the lost one is
    known never to have been answered)."""
    (net_port,) = free_ports(1)
    path = tmp_path / "mon.sock"
    with start_toynic("-kernel", str(REPO / "emu/guests/pingd.elf"), "-append", "ip=10.0.0.1",
                      "-netdev", f"socket,id=n0,listen={LOOPBACK}:{net_port}",
                      "-device", "ne2k_isa,netdev=n0",
                      "-monitor", f"unix:{path},server,nowait") as proc:
        mon = MonitorClient(wait_for(lambda: unix_connect(path), 20, "monitor socket"))
        wire = wait_for(lambda: _try_connect(net_port), 20, "the netdev")
        wire.settimeout(20)
        reader = RecordReader()

        def arp_reply_for(sender_ip: bytes) -> bytes:
            while True:
                data = wire.recv(65536)
                assert data, proc.describe()
                for frame in reader.feed(data):
                    if frame[12:14] == b"\x08\x06" and frame[38:42] == sender_ip:
                        return frame

        wait_for(lambda: "answering ARP" in proc.stdout, 30, "pingd ready")
        assert mon.cmd("set_link n0 off") == ""
        lost_ip, answered_ip = bytes((10, 0, 0, 7)), bytes((10, 0, 0, 8))
        wire.sendall(record(arp_request(PEER_MAC, lost_ip, PINGD_IP)))
        assert mon.cmd("info network").startswith("ne2k_isa")
        assert mon.cmd("set_link n0 on") == ""
        wire.sendall(record(arp_request(PEER_MAC, answered_ip, PINGD_IP)))
        reply = arp_reply_for(answered_ip)
        assert reply[6:12] == GUEST_MAC
        assert "10.0.0.7" not in proc.stdout
        assert mon.quit() == b""
        assert proc.wait(20) == 0, proc.stderr
        wire.close()
    assert not path.exists()


def _try_connect(port: int) -> socket.socket | None:
    try:
        return socket.create_connection((LOOPBACK, port), timeout=1)
    except OSError:
        return None


def test_stdio_monitor_runs_piped_commands_and_quits() -> None:
    result = subprocess.run(
        toynic_argv("-netdev", "hubport,id=h0,hubid=3", "-monitor", "stdio"),
        input=b"info network\nbogus\nquit\n", capture_output=True, timeout=60,
        cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (b"toynic monitor - type 'help' for more information\r\n"
                             b"(toynic) hub 3\r\n \\ h0\r\n"
                             b"(toynic) unknown command: 'bogus'\r\n(toynic) ")


@pytest.mark.parametrize("spec", ["tcp:127.0.0.1:{busy},server,nowait", "pty",
                                  "unix:,server,nowait", "tcp:127.0.0.1:5555"])
def test_bad_monitor_option_is_one_line(spec: str) -> None:
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen(1)
        argv = toynic_argv("-monitor", spec.format(busy=busy.getsockname()[1]))
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO,
                                check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("toynic: -monitor ") and result.stderr.count("\n") == 1


@pytest.mark.interop
def test_info_network_matches_qemu_for_the_same_options(tmp_path: Path) -> None:
    """Same netdevs and NIC on both; QEMU's x86 `pc` board stands in for the NE2000's ISA
    bus. The connection-dependent port is masked; everything else must be identical."""
    q_port, t_port, mon_port = free_ports(3)
    options = ["-netdev", "socket,id=n0,listen={host}:{port}",
               "-device", "ne2k_isa,netdev=n0,id=nic0",
               "-netdev", "socket,id=n1,connect={host}:{port}",
               "-netdev", "hubport,id=hp0,hubid=0,netdev=n1",
               "-netdev", "hubport,id=hp1,hubid=0"]

    def concrete(port: int) -> list[str]:
        return [o.format(host=LOOPBACK, port=port) for o in options]

    qemu = start_qemu("-M", "pc", "-S", *concrete(q_port), workdir=tmp_path)
    try:
        qemu_text = qemu.hmp("info network")
    finally:
        qemu.close()
    with start_toynic("-kernel", str(REPO / "emu/guests/pingd.elf"), "-append", "ip=10.0.0.1",
                      *concrete(t_port), "-monitor",
                      f"tcp:{LOOPBACK}:{mon_port},server,nowait") as proc:
        mon = connect_tcp(mon_port, proc)
        wait_for(lambda: "connection from" in mon.cmd("info network"), 20, "n0 connected")
        toynic_text = mon.cmd("info network")
        mon.quit()
        proc.wait(20)

    def normalise(text: str, port: int) -> str:
        text = text.replace("\r\n", "\n").replace(f":{port}", ":PORT")
        return "\n".join(line.rsplit(":", 1)[0] if "connection from" in line else line
                         for line in text.splitlines())

    assert normalise(toynic_text, t_port) == normalise(qemu_text, q_port)


def test_server_without_nowait_waits_for_the_first_client() -> None:
    (mon_port,) = free_ports(1)
    with start_toynic("-netdev", "hubport,id=h0,hubid=0",
                      "-monitor", f"tcp:{LOOPBACK}:{mon_port},server") as proc:
        wait_for(lambda: "waiting for connection on" in proc.stderr, 20, "the wait notice")
        mon = connect_tcp(mon_port, proc)
        assert mon.cmd("info network") == "hub 0\r\n \\ h0\r\n"
        assert mon.quit() == b""
        assert proc.wait(20) == 0, proc.stderr
