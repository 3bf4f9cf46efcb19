"""The deterministic lab (emu.board.scheduler.QuantumScheduler): what idle time, busy
traffic and many machines cost in wall time. Prints JSON lines:

- idle: 20 pings 1 virtual second apart between two machines (goal: well under 2 s);
- flood: 2 machines, a flood sender and a sink, deterministic vs free-running (frames/s;
  goal: deterministic >= 0.8x free-running);
- scale: N machines on one hub (N = 2, 8, 32), each pinging its neighbour: virtual
  seconds per wall second and frames/s (machines built before the clock starts).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emu.testing import Lab, LabMachine

FLOOD_FRAMES = 2000


def done(*machines: LabMachine) -> bool:
    return all(m.exit_code is not None for m in machines)


def bench_idle() -> dict[str, object]:
    with Lab(deterministic=True) as lab:
        for port in ("h0", "h1"):
            lab.netdev(f"hubport,id={port},hubid=0")
        start = time.perf_counter()
        a = lab.machine("pingd", "ip=10.0.0.1 count=20", ["ne2k_isa,netdev=h0"])
        b = lab.machine("ping", "ip=10.0.0.2 peer=10.0.0.1 count=20 interval=1000",
                        ["ne2k_isa,netdev=h1"])
        assert lab.run_until(lambda: done(a, b), 60), b.output
        wall = time.perf_counter() - start
        assert "20 received" in b.output, b.output
        return {"bench": "deterministic_idle_pings", "pings": 20, "interval_s": 1,
                "virtual_s": round(lab.now_ns / 1e9, 3), "wall_s": round(wall, 3),
                "goal_wall_s": 2.0}


def flood(deterministic: bool) -> float:
    with Lab(deterministic=deterministic) as lab:
        for port in ("h0", "h1"):
            lab.netdev(f"hubport,id={port},hubid=0")
        sink = lab.machine("flood", f"mode=sink count={FLOOD_FRAMES} timeout=20",
                           ["ne2k_isa,netdev=h0"])
        start = time.perf_counter()
        sender = lab.machine("flood", f"mode=send count={FLOOD_FRAMES} size=1000",
                             ["ne2k_isa,netdev=h1"])
        assert lab.run_until(lambda: done(sink, sender), 120), sink.output + sender.output
        wall = time.perf_counter() - start
        assert f"received {FLOOD_FRAMES} frames" in sink.output, sink.output
        return FLOOD_FRAMES / wall


def bench_flood() -> dict[str, object]:
    free = flood(False)
    det = flood(True)
    return {"bench": "deterministic_flood", "frames": FLOOD_FRAMES, "size": 1000,
            "free_running_fps": round(free), "deterministic_fps": round(det),
            "ratio": round(det / free, 2), "goal_ratio": 0.8}


def bench_scale(n: int) -> dict[str, object]:
    """Machine i (even) pings machine i+1 (pingd), 5 pings each."""
    with Lab(deterministic=True) as lab:
        machines = []
        for index in range(n):
            lab.netdev(f"hubport,id=h{index},hubid=0")
        lab.netdev(f"hubport,id=h{n},hubid=0")
        tap = lab.peer("tap", f"h{n}")
        for index in range(n):
            ip = f"10.0.{index // 200}.{index % 200 + 1}"
            if index % 2:
                append = f"ip={ip} count=5"
                machines.append(lab.machine("pingd", append, [f"ne2k_isa,netdev=h{index}"]))
            else:
                peer_ip = f"10.0.{(index + 1) // 200}.{(index + 1) % 200 + 1}"
                append = f"ip={ip} peer={peer_ip} count=5"
                machines.append(lab.machine("ping", append, [f"ne2k_isa,netdev=h{index}"]))
        start = time.perf_counter()
        assert lab.run_until(lambda: done(*machines), 60)
        wall = time.perf_counter() - start
        assert all(m.exit_code == 0 for m in machines), [m.output for m in machines]
        return {"bench": "deterministic_scale", "machines": n,
                "virtual_s": round(lab.now_ns / 1e9, 4), "wall_s": round(wall, 3),
                "virtual_s_per_wall_s": round(lab.now_ns / 1e9 / wall, 4),
                "frames": len(tap.received), "frames_per_s": round(len(tap.received) / wall)}


def main() -> None:
    print(json.dumps(bench_idle()), flush=True)
    print(json.dumps(bench_flood()), flush=True)
    for n in (2, 8, 32):
        print(json.dumps(bench_scale(n)), flush=True)


if __name__ == "__main__":
    main()
