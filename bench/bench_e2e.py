"""End-to-end figures: two toynic machines running guest programs over a stream socket
(`listen=` / `connect=` on 127.0.0.1; QEMU: net/socket.c between two guests).

- ping round trips per second (wall clock): `ping count=N interval=0` against `pingd`,
  timed from the console line of the first reply to that of the last;
- `flood` at 64 and 1514 bytes into a sink without delay: frames per second at the sink
  (wall clock, from its "received 5000" progress line to its final line, so start-up is
  not counted), guest instructions per frame on both sides (the guests count them
  with minstret), and each process's host CPU time per frame between its own progress
  line and its final line (the time its threads ran, from /proc/PID/task/*/schedstat,
  read as each line arrives: a figure other load on the machine disturbs less than the
  wall clock; null where /proc does not tell).

Prints JSON lines:
{"bench": "e2e_ping", "round_trips": N, "round_trips_per_s": R, "rtt_avg_virtual_ms": V,
 "ok": true}
{"bench": "e2e_flood", "frame_size": S, "frames": N, "frames_per_s": F,
 "send_insns_per_frame": I, "sink_insns_per_frame": J, "send_cpu_us_per_frame": C,
 "sink_cpu_us_per_frame": D, "ok": true}
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from emu.testing import free_port

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PINGS = 200
# frames per run by size: past the first progress line, enough to time, few enough to be quick
FLOOD_FRAMES = {64: 10_000, 1514: 7_000}
PROGRESS = 5000  # flood prints a progress line every 5000 frames
DEADLINE = 300.0


class Machine:
    """A toynic process whose console lines are collected with their arrival time and the
    CPU time the process had used by then."""

    def __init__(self, program: str, append: str, netdev: str, mac: str) -> None:
        argv = [sys.executable, "-m", "emu", "-kernel", str(REPO / "emu/guests" / f"{program}.elf"),
                "-append", append, "-netdev", f"socket,id=n0,{netdev}",
                "-device", f"ne2k_isa,netdev=n0,mac={mac}"]
        self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: list[tuple[float, int | None, str]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._changed:
                self.lines.append((time.monotonic(), self.cpu_ns(), raw.decode(errors="replace")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_line(self, pattern: str,
                  timeout: float = DEADLINE) -> tuple[float, int | None, re.Match[str]]:
        """The first console line matching `pattern`: when it arrived, the process's CPU
        nanoseconds then, and the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for stamp, cpu, line in self.lines[seen:]:
                    if m := regex.search(line):
                        return stamp, cpu, m
                seen = len(self.lines)
                if not self._reader.is_alive():
                    raise RuntimeError(f"exited before printing /{pattern}/")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no /{pattern}/ within {timeout}s")
                self._changed.wait(min(remaining, 1.0))

    def cpu_ns(self) -> int | None:
        """Nanoseconds the process's threads have run so far (None: not on /proc)."""
        total = 0
        try:
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return total

    def finish(self, timeout: float = DEADLINE) -> int:
        status = self.proc.wait(timeout)
        self._reader.join(5)
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def bench_ping() -> dict[str, object]:
    port = free_port()
    machines = []
    try:
        pingd = Machine("pingd", "ip=10.0.0.1 timeout=10", f"listen={HOST}:{port}",
                        "52:54:00:00:00:01")
        machines.append(pingd)
        pingd.wait_line("pingd: answering")
        ping = Machine("ping", f"ip=10.0.0.2 peer=10.0.0.1 count={PINGS} interval=0 timeout=5",
                       f"connect={HOST}:{port}", "52:54:00:00:00:02")
        machines.append(ping)
        first, _, _ = ping.wait_line(r"icmp_seq=1 ")
        last, _, _ = ping.wait_line(rf"icmp_seq={PINGS} ")
        _, _, summary = ping.wait_line(r"rtt min/avg/max = [\d.]+/([\d.]+)/")
        status = ping.finish()
        return {"bench": "e2e_ping", "round_trips": PINGS,
                "round_trips_per_s": round((PINGS - 1) / (last - first), 1),
                "rtt_avg_virtual_ms": float(summary.group(1)), "ok": status == 0}
    finally:
        for m in machines:
            m.kill()


def bench_flood(size: int) -> dict[str, object]:
    frames = FLOOD_FRAMES[size]
    port = free_port()
    machines = []
    try:
        sink = Machine("flood", f"mode=sink count={frames} timeout=10",
                       f"listen={HOST}:{port}", "52:54:00:00:00:01")
        machines.append(sink)
        sink.wait_line("flood: sinking")
        sender = Machine("flood", f"mode=send size={size} count={frames} timeout=60",
                         f"connect={HOST}:{port}", "52:54:00:00:00:02")
        machines.append(sender)
        start, sink_cpu0, _ = sink.wait_line(rf"flood: received {PROGRESS}\b")
        end, sink_cpu1, done = sink.wait_line(
            r"flood: received (\d+) frames, (\d+) out of order, (\d+) corrupt, in .* "
            r"(\d+) instructions/frame")
        _, send_cpu0, _ = sender.wait_line(rf"flood: sent {PROGRESS}\b")
        _, send_cpu1, sent = sender.wait_line(r"(\d+) instructions/frame")
        _, _, acked = sender.wait_line(r"sink acknowledged (\d+) frames|no acknowledgement")
        ok = (sink.finish() == 0 and sender.finish() == 0
              and int(done.group(1)) == frames and done.group(2) == done.group(3) == "0"
              and acked.group(1) == str(frames))
        return {"bench": "e2e_flood", "frame_size": size, "frames": frames,
                "frames_per_s": round((frames - PROGRESS) / (end - start), 1),
                "send_insns_per_frame": int(sent.group(1)),
                "sink_insns_per_frame": int(done.group(4)),
                "send_cpu_us_per_frame": _per_frame(send_cpu0, send_cpu1, frames - PROGRESS),
                "sink_cpu_us_per_frame": _per_frame(sink_cpu0, sink_cpu1, frames - PROGRESS),
                "ok": ok}
    finally:
        for m in machines:
            m.kill()


def _per_frame(cpu0: int | None, cpu1: int | None, frames: int) -> float | None:
    """Microseconds of CPU per frame between two readings (None if either is missing)."""
    if cpu0 is None or cpu1 is None:
        return None
    return round((cpu1 - cpu0) / frames / 1e3, 1)


def main() -> int:
    ok = True
    for run in (bench_ping, *(lambda s=s: bench_flood(s) for s in FLOOD_FRAMES)):
        result = run()
        print(json.dumps(result), flush=True)
        ok = ok and bool(result["ok"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
