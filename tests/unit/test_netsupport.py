"""The test harness itself: reading a running child's output must not disturb it."""

import json
import socket
import sys
import threading
import time

import pytest

from tests.netsupport import Proc, QmpClient

# One write per line, as fast as the child can: thousands of writes interleave with the
# parent's polls (a seek-based reader garbled this in every trial).
LINES = 3000
CHILD = f"for i in range({LINES}):\n    print(f'line{{i:05d}}', flush=True)\n"


def test_polling_stdout_while_the_child_writes_keeps_every_byte_in_place():
    proc = Proc([sys.executable, "-c", CHILD], name="writer")
    try:
        deadline = time.monotonic() + 30
        polls = 0
        while proc.popen.poll() is None and time.monotonic() < deadline:
            proc.stdout  # noqa: B018 - each read used to move the child's file offset
            polls += 1
        assert proc.popen.wait(timeout=30) == 0
        assert polls > 0
        assert proc.stdout == "".join(f"line{i:05d}\n" for i in range(LINES))
    finally:
        proc.close()


GREETING = {"QMP": {"version": {}, "capabilities": []}}


def _serve_qmp(sock: socket.socket, replies: dict[str, list[dict]]) -> None:
    """A scripted QMP peer: per command, the lines it writes before its answer."""
    stream = sock.makefile("rwb")
    stream.write(json.dumps(GREETING).encode() + b"\n")
    stream.flush()
    for line in stream:
        request = json.loads(line)
        for extra in replies.get(request["execute"], []):
            stream.write(json.dumps(extra).encode() + b"\n")
        answer = {"return": {"status": "running"}, "id": request["id"]}
        if request["execute"] == "bogus":
            answer = {"error": {"class": "CommandNotFound"}, "id": request["id"]}
        stream.write(json.dumps(answer).encode() + b"\n")
        stream.flush()


def _client(replies: dict[str, list[dict]]) -> tuple[QmpClient, threading.Thread]:
    ours, theirs = socket.socketpair()
    ours.settimeout(10)
    peer = threading.Thread(target=_serve_qmp, args=(theirs, replies), daemon=True)
    peer.start()
    return QmpClient(ours), peer


def test_qmp_answers_are_matched_by_id_past_a_second_greeting_and_events():
    """QEMU under load greets twice (seen in CI): the second greeting is not an answer."""
    event = {"event": "NIC_RX_FILTER_CHANGED", "data": {}}
    qmp, peer = _client({"qmp_capabilities": [GREETING], "query-status": [event]})
    try:
        assert qmp.execute("query-status") == {"status": "running"}
        with pytest.raises(RuntimeError, match="CommandNotFound"):
            qmp.execute("bogus")
    finally:
        qmp.close()
        peer.join(timeout=10)
    assert not peer.is_alive()
