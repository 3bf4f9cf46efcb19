"""`toynic-trace` on the command line: outputs, and every user error is one line on
stderr and exit status 1 (missing, empty or garbage input, bad options)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from emu.tracetool.cli import main
from tests.tracetool.support import REPO, groups, recording, timed_merge


def run(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "emu.tracetool", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_journey_svg_and_html(tmp_path, capsys):
    assert main(["journey", *recording(), "--match", "icmp", "-o", str(tmp_path / "j.svg")]) == 0
    assert main(["journey", *recording(), "--frame", "1-2", "--level", "register",
                 "-o", str(tmp_path / "j.html")]) == 0
    root = ET.parse(tmp_path / "j.svg").getroot()
    assert [g.get("data-frame") for g in groups(root)] == ["3", "4"]
    page = (tmp_path / "j.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "2 frame(s) drawn" in capsys.readouterr().out


def test_summary(capsys):
    assert main(["summary", *recording()]) == 0
    out = capsys.readouterr().out
    assert "B -> A                     2" in out
    assert "frame 3: ICMP echo request 10.0.0.2 → 10.0.0.1 seq=1, 98 bytes, B → A" in out
    assert "ne2000_transmit" in out and "latency per layer (virtual time" in out
    # Each -D file has its own machine's virtual time: hops inside a machine only.
    assert "remote DMA write → transmit" in out and "(wire)" not in out


def test_summary_of_one_clock_has_the_wire_hop(tmp_path, capsys):
    merged = tmp_path / "lab.trace"
    merged.write_text(timed_merge(recording()))
    assert main(["summary", str(merged)]) == 0
    assert "socket write → socket read (wire)" in capsys.readouterr().out


def test_the_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "toynic-trace")
    result = subprocess.run([script, "summary", *recording()], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and "frames per direction" in result.stdout


@pytest.mark.parametrize(("content", "message"), [
    (None, "missing.trace: No such file or directory"),
    (b"", "empty file"),
    (os.urandom(4096).replace(b"\n", b"x"), "no trace events"),
    (b"ne2000_transmit\x00\xff garbage\n" * 50, "no trace events"),
])
@pytest.mark.parametrize("command", ["journey", "summary"])
def test_bad_input_is_one_line_and_status_1(tmp_path, capsys, content, message, command):
    path = tmp_path / "missing.trace"
    if content is not None:
        path.write_bytes(content)
    extra = ["-o", str(tmp_path / "out.svg")] if command == "journey" else []
    assert main([command, str(path), *extra]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("toynic-trace: ")
    assert message in err


@pytest.mark.parametrize(("args", "message"), [
    ([], "required: command"),
    (["journey", "TRACE"], "required: -o/--output"),
    (["journey", "TRACE", "-o", "x.png"], "must end in .svg or .html"),
    (["journey", "TRACE", "-o", "x.svg", "--frame", "9"], "--frame 9: the traces hold 4"),
    (["journey", "TRACE", "-o", "x.svg", "--frame", "2-1"], "expected N or N-M"),
    (["journey", "TRACE", "-o", "x.svg", "--level", "bits"], "invalid choice"),
    (["journey", "TRACE", "-o", "x.svg", "--match", "tcp"], "--match tcp: no frame"),
    (["journey", "TRACE", "-o", "x.svg", "--count", "0"], "--count"),
    (["journey", "TRACE", "-o", "/nonexistent/x.svg"], "No such file or directory"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_options_are_one_line_and_status_1(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main([a for arg in args for a in (recording() if arg == "TRACE" else [arg])]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_a_garbage_file_from_a_real_process_is_one_line(tmp_path):
    (tmp_path / "g.trace").write_bytes(bytes(range(256)) * 64)
    result = run("journey", "g.trace", "-o", "g.svg", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("toynic-trace: g.trace: no trace events in it "
                             "(not a -trace/-D output?)\n")
