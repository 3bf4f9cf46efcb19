"""bench/bench_bytecodes.py counts Python bytecodes per guest instruction: a figure that is
only useful if it is exact, so two runs must print the same numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = {"echo_60", "echo_1514", "flood_64", "cpu_crc32", "cpu_crc32_table",
             "cpu_crc16_ccitt", "cpu_crc32c", "cpu_memcpy"}


def run_quick() -> list[dict[str, object]]:
    result = subprocess.run([sys.executable, "bench/bench_bytecodes.py", "--quick"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_two_runs_count_the_same_bytecodes_for_every_workload() -> None:
    first, second = run_quick(), run_quick()
    assert first == second
    assert {line["workload"] for line in first} == WORKLOADS
    for line in first:
        assert line["bench"] == "bytecodes"
        # A translated guest instruction costs a few bytecodes at least; a figure near
        # zero or in the hundreds means the counting, not the emulator, is broken.
        assert 2 < float(line["bytecodes_per_insn"]) < 100, line
        assert float(line["guest_insns"]) > 0 and float(line["bytecodes"]) > 0, line
