"""The tree is ruff-clean (the project's style gate runs with the tests)."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.netsupport import unavailable

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_reports_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        unavailable("ruff is not installed in this environment (pip install -e '.[test]')")
    result = subprocess.run([ruff, "check", "-q", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
