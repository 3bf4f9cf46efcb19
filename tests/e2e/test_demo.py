"""`make demo`'s program: two machines ping, a summary, and a pcap scapy can read."""

import subprocess
import sys
from pathlib import Path

from scapy.all import ICMP, rdpcap

ROOT = Path(__file__).resolve().parents[2]


def test_demo_pings_summarizes_and_leaves_a_pcap(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "emu.demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "A | pingd: 5 replies sent" in result.stdout
    assert "B | ping: 5 packets transmitted, 5 received, 0% packet loss" in result.stdout
    summary = [line for line in result.stdout.splitlines() if line.startswith("summary:")]
    assert len(summary) == 1
    assert "5/5 echo replies" in summary[0]
    frames = rdpcap(str(tmp_path / "demo.pcap"))
    replies = [frame for frame in frames if ICMP in frame and frame[ICMP].type == 0]
    requests = [frame for frame in frames if ICMP in frame and frame[ICMP].type == 8]
    assert len(replies) == len(requests) == 5
