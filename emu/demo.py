"""`make demo`: two toynic machines ping each other over a TCP socket (QEMU: none; a tour).

Machine A runs `pingd` at 10.0.0.1 on a listening stream socket netdev; machine B runs
`ping 10.0.0.1 count=5` on a connecting one. Both consoles are shown prefixed by
machine, a pcap of A's side of the wire is left in `demo.pcap`, the journey of the first
echo request and its reply through both machines in `demo-journey.svg` (drawn by
`toynic-trace` from each machine's `-D` trace), and a short summary closes the run.
Exit status 0 when every ping came back.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from emu.board.loader import guest_elf
from emu.testing import free_port
from emu.tracetool.cli import write_journey
from emu.tracetool.parse import TraceError
from netdev.dump import read_pcap

ROOT = Path(__file__).resolve().parent.parent
PCAP = Path("demo.pcap")
JOURNEY = Path("demo-journey.svg")
# What the journey shows: every layer boundary a frame crosses.
TRACE_EVENTS = ("-trace", "ne2000_*", "-trace", "net_*", "-trace", "irq_set")
MAC_A = "52:54:00:00:00:0a"
MAC_B = "52:54:00:00:00:0b"
COUNT = 5
DEADLINE_S = 60.0
INTRO = """\
toynic demo: two emulated RISC-V machines, each with an NE2000 NIC, joined by a TCP socket.

  machine A  emu/guests/pingd.elf at 10.0.0.1   -netdev socket,id=n0,listen=127.0.0.1:{port}
  machine B  emu/guests/ping.elf  at 10.0.0.2   -netdev socket,id=n0,connect=127.0.0.1:{port}

B resolves A with ARP and sends 5 ICMP echo requests; A answers. Every frame crosses
guest driver -> NE2000 registers -> net queue -> socket netdev -> TCP (4-byte length +
frame) -> the other machine, and back. A's side of the wire is captured in {pcap}.
Console lines are prefixed with the machine they come from; times are virtual.
"""
OUTRO = """\
Look at the capture:  tshark -r {pcap}   (or open it in Wireshark)
See one ping:         open {journey} in a browser (toynic-trace journey --help)
Trace one ping:       see README.md, "A five-minute tour"
"""


def is_listening(port: int) -> bool:
    """True once some socket listens on 127.0.0.1:port, seen without connecting to it."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(
            fields[1] == want and fields[3] == "0A"
            for fields in (line.split() for line in table.readlines()[1:])
        )


def toynic(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "emu", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def relay_console(name: str, process: subprocess.Popen[str], lines: list[str]) -> threading.Thread:
    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            print(f"{name} | {line}", end="", flush=True)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def summarize(pcap: Path, ping_lines: list[str]) -> str:
    frames = list(read_pcap(pcap)) if pcap.exists() else []
    mac_a = bytes.fromhex(MAC_A.replace(":", ""))
    from_a = sum(1 for frame in frames if frame[6:12] == mac_a)
    rtts = [float(m.group(1)) for line in ping_lines if (m := re.search(r"time=([\d.]+) ms", line))]
    rtt_text = (
        f"rtt min/avg/max {min(rtts):.3f}/{sum(rtts) / len(rtts):.3f}/{max(rtts):.3f} ms"
        if rtts
        else "no replies"
    )
    return (
        f"summary: {len(frames) - from_a} frames B->A, {from_a} frames A->B, "
        f"{len(rtts)}/{COUNT} echo replies, {rtt_text} (virtual time); pcap: {pcap.resolve()}"
    )


def draw_journey(traces: Path) -> str:
    """demo-journey.svg from both machines' traces and the pcap; the summary's line."""
    try:
        write_journey([str(traces / "B.trace"), str(traces / "A.trace"), str(PCAP)],
                      str(JOURNEY), match="icmp", count=2)
    except TraceError as err:
        return f"journey: not drawn ({err})"
    return f"journey: {JOURNEY.resolve()} (the first echo request and its reply)"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="toynic-demo-") as traces:
        return run(Path(traces))


def run(traces: Path) -> int:
    port = free_port()
    print(INTRO.format(port=port, pcap=PCAP), flush=True)
    a = toynic(
        "-kernel", str(guest_elf("pingd")),
        "-append", f"ip=10.0.0.1 count={COUNT} timeout=30",
        "-netdev", f"socket,id=n0,listen=127.0.0.1:{port}",
        "-device", f"ne2k_isa,netdev=n0,mac={MAC_A}",
        "-object", f"filter-dump,id=d0,netdev=n0,file={PCAP.resolve()}",
        *TRACE_EVENTS, "-D", str(traces / "A.trace"),
    )
    a_lines: list[str] = []
    b_lines: list[str] = []
    threads = [relay_console("A", a, a_lines)]
    b: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not is_listening(port):
            if a.poll() is not None or time.monotonic() > deadline:
                print("demo: machine A did not start listening", file=sys.stderr)
                return 1
            time.sleep(0.02)
        b = toynic(
            "-kernel", str(guest_elf("ping")),
            "-append", f"ip=10.0.0.2 peer=10.0.0.1 count={COUNT} timeout=10",
            "-netdev", f"socket,id=n0,connect=127.0.0.1:{port}",
            "-device", f"ne2k_isa,netdev=n0,mac={MAC_B}",
            *TRACE_EVENTS, "-D", str(traces / "B.trace"),
        )
        threads.append(relay_console("B", b, b_lines))
        b_status = b.wait(timeout=DEADLINE_S)
        a_status = a.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        print("demo: a machine did not finish in time", file=sys.stderr)
        return 1
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        for thread in threads:
            thread.join(timeout=5)
    print()
    print(summarize(PCAP, b_lines))
    print(draw_journey(traces))
    print(OUTRO.format(pcap=PCAP, journey=JOURNEY), end="")
    return 0 if a_status == 0 and b_status == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
