"""What a failing lab leaves (emu.testing.report through emu.testing.lab.Lab): a note on
the exception naming the machines with their last console lines and the last frames of
each link, a pcap per link, the consoles; `lab.example()` for a lab that outlives one
example; `lab.drain()`; `machine_settings` (no explain phase)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import Phase, given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP
from scapy.layers.l2 import ARP
from scapy.utils import rdpcap

from emu.testing import BROADCAST, Lab, ethernet, machine_settings
from emu.testing.report import FAILURES_ENV, failure_dir

REPO = Path(__file__).resolve().parents[2]
OTHER = "02:00:00:00:00:01"
# An internal module path (emu/board/machine.py, devices/dp8390.py:829) or a default repr.
INTERNALS = re.compile(r"LabMachine\(|object at 0x|\b(emu|devices|netdev)/\w+\.py")


def notes(error: BaseException) -> str:
    return "\n".join(getattr(error, "__notes__", []))


def test_a_failing_two_machine_property_leaves_a_report_and_a_pcap_per_link(tmp_path):
    @machine_settings(max_examples=10, database=None)
    @given(count=st.integers(1, 3))
    def pings_are_never_answered_twice(count):
        with Lab(deterministic=True, artifacts=tmp_path) as lab:
            for port in ("h0", "h1", "h2"):
                lab.netdev(f"hubport,id={port},hubid=0")
            lab.peer("tap", "h2")
            lab.machine("pingd", "ip=10.0.0.1", ["ne2k_isa,netdev=h0"], name="A")
            b = lab.machine("ping", f"ip=10.0.0.2 peer=10.0.0.1 count={count}",
                            ["ne2k_isa,netdev=h1"], name="B")
            assert lab.run_until(lambda: b.exit_code is not None, 10)
            assert "icmp_seq=2" not in b.output, b     # the deliberate bug: fails from 2 on

    with pytest.raises(AssertionError) as caught:
        pings_are_never_answered_twice()
    text = str(caught.value) + "\n" + notes(caught.value)

    assert "<machine B: ping.elf, exited 0>" in text            # the readable repr
    assert "machine A: kernel pingd.elf, running" in text
    assert "| pingd: echo reply to 10.0.0.2 icmp_seq=2" in text     # console lines
    assert "| ping: 2 packets transmitted, 2 received" in text
    assert "link h0 <-> ne2k_isa.0 (NIC of A): 6 frame(s)" in text  # ARP + 2 pings, shrunk
    assert re.search(r"#5 t=\d+ A -> h0 98 B ICMP echo reply 10.0.0.1 > 10.0.0.2 seq=2", text)
    assert f"artifacts (a pcap per link, full consoles): {tmp_path}" in text
    assert INTERNALS.search(text) is None, INTERNALS.search(text)
    assert "Explanation" not in text

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "A.console.txt", "B.console.txt", "h0.pcap", "h1.pcap", "h2.pcap", "report.txt"]
    for link in ("h0", "h1", "h2"):
        packets = rdpcap(str(tmp_path / f"{link}.pcap"))
        assert [p.haslayer(ARP) for p in packets] == [True, True, False, False, False, False]
        assert [p[ICMP].type for p in packets[2:]] == [8, 0, 8, 0]  # request, reply, x2
        # Stamped with the lab's virtual time (from 0): a round trip takes whole quanta.
        stamps = [round(float(p.time) * 1e9) for p in packets]
        assert stamps == sorted(stamps) and stamps[0] == 100_000 and stamps[-1] < 10**9
    assert "ping: 2 packets transmitted" in (tmp_path / "B.console.txt").read_text()
    assert (tmp_path / "report.txt").read_text().startswith("toynic lab at t=")


def test_an_example_on_a_long_lived_lab_reports_only_its_own_frames(tmp_path):
    with Lab(deterministic=True, artifacts=tmp_path) as lab:
        wire = lab.peer("wire")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=wire"], name="echo")
        assert lab.wait_output(echo, "returning every frame", 5)
        wire.send(ethernet(BROADCAST, OTHER, 0x88B5, b"first".ljust(46, b".")))
        # The answer is still to come: drain lets it arrive before the next example.
        assert lab.drain()
        assert len(wire.received) == 1

        with pytest.raises(AssertionError) as caught, lab.example():
            wire.send(ethernet(BROADCAST, OTHER, 0x88B5, b"second".ljust(46, b".")))
            assert lab.drain()
            raise AssertionError("the second example fails")
        report = notes(caught.value)
        assert "link wire <-> ne2k_isa.0 (NIC of echo): 2 frame(s) in this run" in report
        assert "#2 t=" in report and "#1 t=" not in report
        frames = [bytes(p) for p in rdpcap(str(tmp_path / "wire.pcap"))]
        assert [f[14:20] for f in frames] == [b"second", b"second"]   # there and back


def test_drain_waits_for_a_frame_scheduled_later_and_its_answer():
    with Lab(deterministic=True) as lab:
        wire = lab.peer("wire")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=wire"])
        assert lab.wait_output(echo, "returning every frame", 5)
        at = lab.now_ns + 50_000_000
        wire.send(ethernet(BROADCAST, OTHER, 0x88B5, bytes(50)), at_ns=at)
        assert lab.drain(quiet=0.001)
        assert len(wire.received) == 1 and wire.received_at[0] > at
        assert lab.now_ns >= wire.received_at[0] + 1_000_000


def test_drain_says_false_when_a_receiver_never_takes_its_frames():
    with Lab(deterministic=True) as lab:
        wire = lab.peer("wire")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=wire"])
        assert lab.wait_output(echo, "returning every frame", 5)
        wire.accepting = False                     # answers queue at its door for good
        wire.send(ethernet(BROADCAST, OTHER, 0x88B5, bytes(50)))
        assert lab.drain(timeout=0.05) is False


def test_a_free_running_lab_stamps_its_pcaps_with_wall_time(tmp_path):
    before = time.time()
    with pytest.raises(RuntimeError), Lab(artifacts=tmp_path) as lab:
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        a, b = lab.peer("a", "h0"), lab.peer("b", "h1")
        a.send(ethernet(BROADCAST, OTHER, 0x88B5, bytes(50)))
        assert lab.run_until(lambda: b.received, 5)
        raise RuntimeError("deliberate")
    (packet,) = rdpcap(str(tmp_path / "h1.pcap"))
    assert before - 1 <= float(packet.time) <= time.time() + 1
    assert "(host time)" in (tmp_path / "report.txt").read_text()


def test_a_report_that_cannot_be_written_is_a_note_not_a_new_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError) as caught, Lab(artifacts=blocker / "sub") as lab:
        lab.peer("wire")
        raise ValueError("the test's own error")
    assert str(caught.value) == "the test's own error"
    assert notes(caught.value).startswith("toynic: no failure report: ")


def test_a_lab_that_ends_well_writes_nothing(tmp_path):
    with Lab(artifacts=tmp_path / "out") as lab:
        lab.peer("wire")
    assert not (tmp_path / "out").exists()


def test_failure_dir_names_the_running_test(monkeypatch, tmp_path):
    monkeypatch.setenv(FAILURES_ENV, str(tmp_path))
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/x.py::test_y[a b] (call)")
    assert failure_dir() == tmp_path / "tests_x.py_test_y_a_b"
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert failure_dir() == tmp_path / "lab"


def test_peers_and_machines_have_readable_reprs():
    with Lab() as lab:
        wire = lab.peer("wire")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=wire"], name="E")
        assert repr(echo) == "<machine E: echo.elf, running>"
        assert repr(wire) == "<peer wire: 0 frame(s) received>"


def test_machine_settings_drop_the_explain_phase_and_the_deadline():
    chosen = machine_settings(database=None)
    assert Phase.explain not in chosen.phases and Phase.shrink in chosen.phases
    assert chosen.deadline is None and chosen.max_examples == 25 and chosen.database is None


def test_machine_settings_needs_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "from emu.testing import machine_settings\n"
            "try:\n    machine_settings()\n"
            "except ModuleNotFoundError as error:\n    print(error.name)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "hypothesis"


def test_the_artifacts_hold_a_copy_of_the_lab_trace(tmp_path):
    trace = tmp_path / "run.trace"
    out = tmp_path / "out"
    with pytest.raises(AssertionError), Lab(deterministic=True, artifacts=out) as lab:
        lab.trace("net_hub_*", str(trace))
        lab.netdev("hubport,id=h0,hubid=0")
        lab.netdev("hubport,id=h1,hubid=0")
        a, b = lab.peer("a", "h0"), lab.peer("b", "h1")
        a.send(ethernet(BROADCAST, OTHER, 0x88B5, bytes(50)))
        assert lab.run_until(lambda: b.received, 1)
        raise AssertionError("deliberate")
    copied = (out / "run.trace").read_text()
    assert copied and all(line.startswith("t=") for line in copied.splitlines())
