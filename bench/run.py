"""`make bench`: runs every bench/bench_*.py in turn; each prints JSON lines on stdout."""

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    status = 0
    for script in sorted(here.glob("bench_*.py")):
        result = subprocess.run([sys.executable, str(script)], cwd=here.parent, check=False)
        if result.returncode != 0:
            print(f"bench: {script.name} failed with status {result.returncode}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
