"""pcap capture cost (QEMU counterpart: net/dump.c's filter-dump).

`pcap_write`: frames per second a DumpFilter writes to a pcap file, one frame at a time
(`observe`, as for NIC traffic) and 64 frames per batch (`observe_batch`, as for a
relayed socket batch), for 64- and 1514-byte frames. The file is read back and checked.

Prints JSON lines:
{"bench": "pcap_write", "mode": "frame"|"batch", "frame_size": S, "frames": N,
 "frames_per_s": F, "ok": true}
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netdev.dump import DumpFilter, read_pcap
from netdev.framing import RecordBatch

BATCH = 64


def bench(mode: str, size: int, frames: int, workdir: Path) -> dict:
    path = workdir / f"{mode}-{size}.pcap"
    frame = bytes(range(256)) * 6
    frame = frame[:size]
    dump = DumpFilter("dump", str(path))
    batch = RecordBatch.from_frames([frame] * BATCH)
    start = time.perf_counter()
    if mode == "frame":
        for _ in range(frames):
            dump.observe(frame, True)
    else:
        for _ in range(frames // BATCH):
            dump.observe_batch(batch, True)
    elapsed = time.perf_counter() - start
    dump.close()
    written = list(read_pcap(path))
    ok = len(written) == frames and all(f == frame for f in written)
    return {"bench": "pcap_write", "mode": mode, "frame_size": size, "frames": frames,
            "frames_per_s": round(frames / elapsed), "ok": ok}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("frame", "batch"):
            for size in (64, 1514):
                result = bench(mode, size, 64 * 1000, Path(tmp))
                print(json.dumps(result), flush=True)
                if not result["ok"]:
                    return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
