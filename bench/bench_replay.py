"""Record/replay (`-icount rr=record|replay`, emu.board.replay): the wall time of replaying
a recorded run against the wall time of recording it. Prints JSON lines:

- ping: `make demo`'s machine B (ping count=5 against pingd over a TCP socket), recorded,
  then replayed with the peer gone (replay never waits in real time for the peer);
- flood: a flood sink (listening) taking 1000 frames of 1000 bytes from a live sender that
  connects to it, recorded, then replayed (the frames come from the rrfile; CPU-bound both ways).

Each figure is one `toynic` process, start-up included; replay is the best of three.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emu.testing import free_port
from tests.netsupport import start_toynic, wait_listening

ROOT = Path(__file__).resolve().parent.parent

FLOOD_FRAMES = 1000


def toynic(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "emu", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    return time.perf_counter() - start, done


def record_listening(args: list[str], peer: list[str], port: int) -> tuple[float, str]:
    """Record the listening side: it starts first, the peer connects once it listens."""
    start = time.perf_counter()
    with start_toynic(*args) as recorder:
        wait_listening(recorder.pid, port)
        with start_toynic(*peer) as other:
            status = recorder.wait(120)
            other.wait(60)
        assert status == 0, recorder.stdout + recorder.stderr
        return time.perf_counter() - start, recorder.stdout


def measure(name: str, peer: list[str], recorded: list[str], expect: str, tmp: Path,
            recorded_listens: bool = False) -> dict[str, object]:
    port = free_port()
    rrfile = tmp / f"{name}.rr"
    peer = [a.replace("PORT", str(port)) for a in peer]

    def args(mode: str) -> list[str]:
        return [a.replace("PORT", str(port)) for a in recorded] + [
            "-icount", f"shift=0,rr={mode},rrfile={rrfile}",
            "-object", "filter-replay,id=r0,netdev=n0"]

    if recorded_listens:
        record_s, output = record_listening(args("record"), peer, port)
    else:
        with start_toynic(*peer) as other:
            wait_listening(other.pid, port)
            record_s, done = toynic(*args("record"))
            other.wait(60)
        assert done.returncode == 0, done.stdout + done.stderr
        output = done.stdout
    assert expect in output, output
    replays = []
    for _ in range(3):
        replay_s, again = toynic(*args("replay"))
        assert again.stdout == output, again.stderr
        replays.append(replay_s)
    return {"bench": f"replay_{name}", "record_wall_s": round(record_s, 3),
            "replay_wall_s": round(min(replays), 3),
            "replay_vs_record": round(min(replays) / record_s, 3),
            "rrfile_bytes": rrfile.stat().st_size}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="toynic-bench-rr-") as tmp:
        nic = "ne2k_isa,netdev=n0,mac=52:54:00:00:00:0{}"
        print(json.dumps(measure(
            "ping",
            ["-kernel", "emu/guests/pingd.elf", "-append", "ip=10.0.0.1 count=5 timeout=30",
             "-netdev", "socket,id=n0,listen=127.0.0.1:PORT", "-device", nic.format("a")],
            ["-kernel", "emu/guests/ping.elf", "-append", "ip=10.0.0.2 peer=10.0.0.1 count=5",
             "-netdev", "socket,id=n0,connect=127.0.0.1:PORT", "-device", nic.format("b")],
            "5 received", Path(tmp))), flush=True)
        print(json.dumps(measure(
            "flood",
            ["-kernel", "emu/guests/flood.elf",
             "-append", f"mode=send count={FLOOD_FRAMES} size=1000",
             "-netdev", "socket,id=n0,connect=127.0.0.1:PORT", "-device", nic.format("a")],
            ["-kernel", "emu/guests/flood.elf",
             "-append", f"mode=sink count={FLOOD_FRAMES} timeout=20",
             "-netdev", "socket,id=n0,listen=127.0.0.1:PORT", "-device", nic.format("b")],
            f"received {FLOOD_FRAMES} frames", Path(tmp), recorded_listens=True)), flush=True)


if __name__ == "__main__":
    main()
