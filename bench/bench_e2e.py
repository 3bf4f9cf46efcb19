"""End-to-end figures: two toynic machines running guest programs over a stream socket
(`listen=` / `connect=` on 127.0.0.1; QEMU: net/socket.c between two guests).

- ping round trips per second (wall clock): `ping count=N interval=0` against `pingd`,
  timed from the console line of the first reply to that of the last;
- `flood` at 64 and 1514 bytes into a sink without delay: frames per second at the sink
  (wall clock, from its "received 5000" progress line to its final line, so start-up is
  not counted), guest instructions per frame on both sides (the guests count them
  with minstret), and each process's host CPU time per frame (user + system over the
  whole run, start-up included: a figure other load on the machine disturbs less than
  the wall clock).

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
    """A toynic process whose console lines are collected with their arrival time."""

    def __init__(self, program: str, append: str, netdev: str, mac: str) -> None:
        argv = [sys.executable, "-m", "emu", "-kernel", str(REPO / "emu/guests" / f"{program}.elf"),
                "-append", append, "-netdev", f"socket,id=n0,{netdev}",
                "-device", f"ne2k_isa,netdev=n0,mac={mac}"]
        self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: list[tuple[float, str]] = []
        self.cpu_s = 0.0  # user + system time, known once `finish` has reaped the process
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._changed:
                self.lines.append((time.monotonic(), raw.decode(errors="replace")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_line(self, pattern: str, timeout: float = DEADLINE) -> tuple[float, re.Match[str]]:
        """The first console line matching `pattern`, and when it arrived."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for stamp, line in self.lines[seen:]:
                    if m := regex.search(line):
                        return stamp, m
                seen = len(self.lines)
                if not self._reader.is_alive():
                    raise RuntimeError(f"exited before printing /{pattern}/")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no /{pattern}/ within {timeout}s")
                self._changed.wait(min(remaining, 1.0))

    def finish(self, timeout: float = DEADLINE) -> int:
        """Wait for the exit (reaped here, for its resource usage); the exit status."""
        deadline = time.monotonic() + timeout
        while self.proc.returncode is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.cpu_s = usage.ru_utime + usage.ru_stime
            elif time.monotonic() > deadline:
                raise TimeoutError(f"still running after {timeout}s")
            else:
                time.sleep(0.01)
        self._reader.join(5)
        return self.proc.returncode

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
        first, _ = ping.wait_line(r"icmp_seq=1 ")
        last, _ = ping.wait_line(rf"icmp_seq={PINGS} ")
        _, summary = ping.wait_line(r"rtt min/avg/max = [\d.]+/([\d.]+)/")
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
        start, _ = sink.wait_line(rf"flood: received {PROGRESS}\b")
        end, done = sink.wait_line(r"flood: received (\d+) frames, (\d+) out of order, "
                                   r"(\d+) corrupt, in .* (\d+) instructions/frame")
        _, sent = sender.wait_line(r"(\d+) instructions/frame")
        _, acked = sender.wait_line(r"sink acknowledged (\d+) frames|no acknowledgement")
        ok = (sink.finish() == 0 and sender.finish() == 0
              and int(done.group(1)) == frames and done.group(2) == done.group(3) == "0"
              and acked.group(1) == str(frames))
        return {"bench": "e2e_flood", "frame_size": size, "frames": frames,
                "frames_per_s": round((frames - PROGRESS) / (end - start), 1),
                "send_insns_per_frame": int(sent.group(1)),
                "sink_insns_per_frame": int(done.group(4)),
                "send_cpu_us_per_frame": round(sender.cpu_s / frames * 1e6, 1),
                "sink_cpu_us_per_frame": round(sink.cpu_s / frames * 1e6, 1), "ok": ok}
    finally:
        for m in machines:
            m.kill()


def main() -> int:
    ok = True
    for run in (bench_ping, *(lambda s=s: bench_flood(s) for s in FLOOD_FRAMES)):
        result = run()
        print(json.dumps(result), flush=True)
        ok = ok and bool(result["ok"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
