"""emu.core.fdwriter.FdWriter: console and monitor output that never blocks the loop.

A full pipe or terminal takes what fits and the rest waits in a bounded backlog (the
oldest bytes dropped and counted past the bound); the descriptor we were given keeps its
blocking mode (it is shared with the parent shell); EPIPE/ENOSPC/EBADF are reported once
and later output is dropped; `drain` waits for a slow reader unless told to give up."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
from collections.abc import Iterator

import pytest

from emu.core.fdwriter import FdWriter, fd_pollable
from emu.core.loop import MainLoop

pytestmark = pytest.mark.timeout(60)

PIPE_SIZE = 4096


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def read_available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    data = bytearray()
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            data += chunk
    return bytes(data)


def test_a_full_pipe_keeps_the_newest_bytes_and_counts_the_dropped(
        loop: MainLoop, pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = FdWriter(loop, w, limit=1000)
    assert os.write(w, b"a" * PIPE_SIZE) == PIPE_SIZE  # the pipe is full
    text = bytes(range(48, 58)) * 200  # 2000 bytes into a full pipe: 1000 must go
    for i in range(0, len(text), 7):
        writer.write(text[i:i + 7])
    writer.flush()
    assert writer.pending == 1000
    assert writer.dropped == 1000
    assert os.get_blocking(w), "the shared descriptor must stay blocking"
    got = bytearray()
    loop.set_read_handler(r, lambda: got.extend(os.read(r, 512)))
    assert loop.run_until(lambda: writer.pending == 0 and len(got) == PIPE_SIZE + 1000, 10)
    loop.set_read_handler(r, None)
    assert bytes(got) == b"a" * PIPE_SIZE + text[-1000:]
    assert writer.error is None
    writer.close()


def test_a_terminal_nobody_reads_does_not_block_and_keeps_its_mode(loop: MainLoop) -> None:
    master, slave = pty.openpty()
    try:
        writer = FdWriter(loop, slave, limit=1 << 20)
        for _ in range(64):
            writer.write(b"x" * 4096)  # no newline: the terminal adds nothing
            writer.flush()
        assert writer.pending > 0
        assert os.get_blocking(slave)
        got = bytearray()
        loop.set_read_handler(master, lambda: got.extend(os.read(master, 65536)))
        assert loop.run_until(lambda: writer.pending == 0 and len(got) == 64 * 4096, 20)
        loop.set_read_handler(master, None)
        assert writer.dropped == 0 and bytes(got) == b"x" * 64 * 4096
        writer.close()
    finally:
        os.close(master)
        os.close(slave)


def test_epipe_is_reported_once_and_later_output_dropped(
        loop: MainLoop, pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.close(r)
    errors: list[OSError] = []
    writer = FdWriter(loop, w)
    writer.on_error = errors.append
    for _ in range(3):
        writer.write(b"hello\n")
        writer.flush()
    assert [e.errno for e in errors] == [32]  # EPIPE
    assert writer.dropped == 18
    writer.close()


def test_a_full_device_and_a_closed_descriptor_are_reported(loop: MainLoop) -> None:
    errors: list[OSError] = []
    with open("/dev/full", "wb") as full:
        writer = FdWriter(loop, full.fileno())
        writer.on_error = errors.append
        writer.write(b"x")
        writer.flush()
        writer.close()
    closed = FdWriter(loop, None)
    closed.on_error = errors.append
    closed.write(b"y")
    closed.flush()
    assert [e.errno for e in errors] == [28, 9]  # ENOSPC, EBADF


def test_a_regular_file_gets_everything(loop: MainLoop, tmp_path) -> None:
    path = tmp_path / "out"
    with open(path, "wb") as f:
        writer = FdWriter(loop, f.fileno(), limit=10)
        writer.write(b"0123456789")
        writer.flush()
        writer.write(b"abcdefghij")
        writer.flush()
        writer.close()
    assert path.read_bytes() == b"0123456789abcdefghij"


def test_drain_waits_for_the_reader_unless_told_to_give_up(
        loop: MainLoop, pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = FdWriter(loop, w)
    writer.write(b"z" * (3 * PIPE_SIZE))
    writer.flush()
    writer.drain(lambda: True)
    assert writer.pending == 2 * PIPE_SIZE
    got = bytearray()
    loop.set_read_handler(r, lambda: got.extend(os.read(r, 1000)))
    writer.drain(lambda: False)
    assert writer.pending == 0
    loop.set_read_handler(r, None)
    got += read_available(r)
    assert bytes(got) == b"z" * (3 * PIPE_SIZE)
    writer.close()


def test_fd_pollable(tmp_path) -> None:
    r, w = os.pipe()
    try:
        assert fd_pollable(r)
    finally:
        os.close(r)
        os.close(w)
    with open(tmp_path / "f", "wb") as f, open("/dev/null", "rb") as null:
        assert not fd_pollable(f.fileno())
        assert not fd_pollable(null.fileno())
