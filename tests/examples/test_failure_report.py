"""docs/testing-kit.md, "When a property fails", as tests: a property with a deliberate
mistake fails, and what it leaves — the note on the error and a pcap per link — is what
the guide shows (its blocks marked file=tests/examples/test_failure_report.py are
verbatim slices of this file)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP
from scapy.utils import rdpcap

pytestmark = pytest.mark.timeout(120)

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from emu.testing import Lab, machine_settings  # noqa: E402


@machine_settings(max_examples=10)
@given(count=st.integers(1, 4))
def check_every_ping_is_answered(count):
    with Lab(deterministic=True) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        lab.machine("pingd", "ip=10.0.0.1", ["ne2k_isa,netdev=h0"], name="A")
        b = lab.machine("ping", f"ip=10.0.0.2 peer=10.0.0.1 count={count}",
                        ["ne2k_isa,netdev=h1"], name="B")
        assert lab.run_until(lambda: b.exit_code is not None, 10)
        assert f"{count} received" in b.output and count < 3  # the deliberate mistake


def test_the_failure_names_machines_and_frames_and_leaves_pcaps(tmp_path, monkeypatch):
    monkeypatch.setenv("TOYNIC_FAILURES", str(tmp_path))     # instead of the temp dir
    with pytest.raises(AssertionError) as caught:
        check_every_ping_is_answered()
    note = "\n".join(caught.value.__notes__)
    (folder,) = tmp_path.iterdir()                 # toynic-failures/<this test's id>
    assert folder.name.endswith("test_the_failure_names_machines_and_frames_and_leaves_pcaps")
    assert f"artifacts (a pcap per link, full consoles): {folder}" in note
    assert "machine B: kernel ping.elf, exited 0" in note
    assert "| ping: 3 packets transmitted, 3 received, 0% packet loss" in note
    assert "link h1 <-> ne2k_isa.1 (NIC of B): 8 frame(s) in this run" in note
    assert "Explanation" not in note
    requests = [p for p in rdpcap(str(folder / "h1.pcap")) if p.haslayer(ICMP)]
    assert [p[ICMP].type for p in requests] == [8, 0] * 3
