"""A hostile rrfile (`-icount rr=replay,rrfile=...`) is one clear error before the run, never
a traceback or a hang: files that never end, FIFOs, deep JSON, events naming netdevs the
header does not list, link names that are not UTF-8; a huge file of garbage is refused
without being read into memory first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from emu.board.rrfile import (
    MAGIC,
    PREAMBLE,
    VERSION,
    EndHow,
    Event,
    Kind,
    Position,
    encode,
    read_rrfile,
)

AT = Position(instret=10, now_ns=10, pc=0x8000_0000, idle=True)
END = Event(Kind.END, AT, how=EndHow.POWER_OFF)
HEADER = {"netdevs": ["n0"], "append": ""}
REPO = Path(__file__).resolve().parents[2]


def rrfile(*events: Event, header: object = None, tail: bytes = b"") -> bytes:
    text = json.dumps(HEADER if header is None else header).encode()
    return (PREAMBLE.pack(MAGIC, VERSION, len(text)) + text
            + b"".join(encode(e) for e in events) + tail)


def write(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "bad.rr"
    path.write_bytes(content)
    return str(path)


def a_fifo(tmp_path: Path) -> str:
    path = tmp_path / "fifo.rr"
    os.mkfifo(path)
    return str(path)


def deep_json(tmp_path: Path) -> str:
    text = b"[" * 100_000
    return write(tmp_path, PREAMBLE.pack(MAGIC, VERSION, len(text)) + text)


def frame_of_netdev(index: int) -> Callable[[Path], str]:
    return lambda tmp: write(tmp, rrfile(Event(Kind.FRAME, AT, data=b"x" * 60, netdev=index),
                                         END))


def link_named(name: bytes) -> Callable[[Path], str]:
    return lambda tmp: write(tmp, rrfile(Event(Kind.LINK, AT, data=name, up=True), END))


CASES: list[tuple[str, Callable[[Path], str], str]] = [
    ("never ends", lambda tmp: "/dev/zero", "not a regular file"),
    ("a FIFO nobody writes", a_fifo, "not a regular file"),
    ("a directory", lambda tmp: str(tmp), "not a regular file"),
    ("deeply nested JSON header", deep_json, "its header is not valid"),
    ("frame of an unlisted netdev", frame_of_netdev(1),
     "frame event at byte"),
    ("netdevs not a list", lambda tmp: write(tmp, rrfile(END, header={"netdevs": 5})),
     "its header is not valid"),
    ("link name not UTF-8", link_named(b"\xff\xfe"), "malformed link event"),
]


def read_in_child(path: str) -> str:
    """read_rrfile(path) in a child under a 1 GiB address-space limit and a 20 s timeout:
    what it printed (the UserError's text, or 'read' when it returned)."""
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from emu.board.rrfile import read_rrfile\n"
        "from emu.core.errors import UserError\n"
        "try:\n"
        "    read_rrfile(sys.argv[1])\n"
        "    print('read')\n"
        "except UserError as err:\n"
        "    print(err)\n")
    try:
        done = subprocess.run([sys.executable, "-c", script, path], capture_output=True,
                              text=True, timeout=20, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail(f"read_rrfile({path}) hung")
    assert done.returncode == 0, done.stderr[-800:]
    return done.stdout


@pytest.mark.parametrize(("source", "expected"),
                         [(make, text) for _, make, text in CASES],
                         ids=[name for name, _, _ in CASES])
def test_a_hostile_rrfile_is_one_line(tmp_path: Path, source: Callable[[Path], str],
                                      expected: str) -> None:
    path = source(tmp_path)
    out = read_in_child(path)
    assert out.count("\n") == 1
    assert out.startswith(f"rrfile {path}: ")
    assert expected in out


def test_valid_events_of_a_listed_netdev_still_read(tmp_path: Path) -> None:
    frame = Event(Kind.FRAME, AT, data=b"x" * 60, netdev=0)
    link = Event(Kind.LINK, AT, data=b"n0", up=False)
    header, events = read_rrfile(write(tmp_path, rrfile(frame, link, END)))
    assert header == HEADER
    assert events == [frame, link, END]


def test_a_huge_garbage_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    # A valid header then 3 GiB (sparse) of zeros: the first event is malformed. The reader
    # runs under a 1 GiB address-space limit, so reading the whole file first fails.
    path = tmp_path / "huge.rr"
    with open(path, "wb") as file:
        file.write(rrfile())
        file.truncate(3 << 30)
    assert read_in_child(str(path)) == (f"rrfile {path}: unknown event kind 0 at byte "
                                        f"{len(rrfile())}\n")
