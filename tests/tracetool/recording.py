"""Record one ping between two toynic processes, traced: A.trace, B.trace and A.pcap.

The docs' picture (docs/img/ping-journey.svg) is drawn from such a recording, kept in
docs/img/journey/; `python -m tests.tracetool.recording docs/img/journey` records it
again, and tests/tracetool/test_docs_picture.py checks that a fresh run still tells the
same story.
"""

from __future__ import annotations

import sys
from pathlib import Path

from emu.testing import free_port
from tests.netsupport import start_toynic, wait_listening

TRACE_EVENTS = ("-trace", "ne2000_*", "-trace", "net_*", "-trace", "irq_set")
MAC_A = "52:54:00:00:00:0a"
MAC_B = "52:54:00:00:00:0b"


def record(directory: Path, count: int = 1, timeout: float = 30.0) -> list[Path]:
    """Run pingd (A) and ping (B) with `count` echo requests; returns the files written."""
    directory = directory.resolve()  # toynic runs in the repository's root
    directory.mkdir(parents=True, exist_ok=True)
    a_trace, b_trace, pcap = directory / "A.trace", directory / "B.trace", directory / "A.pcap"
    port = free_port()
    with start_toynic(
            "-kernel", "emu/guests/pingd.elf", "-append", f"ip=10.0.0.1 count={count} timeout=30",
            "-netdev", f"socket,id=n0,listen=127.0.0.1:{port}",
            "-device", f"ne2k_isa,netdev=n0,mac={MAC_A}",
            "-object", f"filter-dump,id=d0,netdev=n0,file={pcap}",
            *TRACE_EVENTS, "-D", str(a_trace)) as a:
        with a.closed_on_failure():
            wait_listening(a.pid, port)
        with start_toynic(
                "-kernel", "emu/guests/ping.elf",
                "-append", f"ip=10.0.0.2 peer=10.0.0.1 count={count}",
                "-netdev", f"socket,id=n0,connect=127.0.0.1:{port}",
                "-device", f"ne2k_isa,netdev=n0,mac={MAC_B}",
                *TRACE_EVENTS, "-D", str(b_trace)) as b:
            status_b = b.wait(timeout)
            status_a = a.wait(timeout)
            if status_a or status_b:
                raise RuntimeError(f"ping exited {status_b}, pingd {status_a}:\n"
                                   f"{b.stdout}{b.stderr}{a.stdout}{a.stderr}")
    return [a_trace, b_trace, pcap]


if __name__ == "__main__":
    for path in record(Path(sys.argv[1])):
        print(path)
