"""The Makefile sets up the repository's own .venv even when run through a symlinked copy
of the tree, as the documentation runner does for `make demo` (tests/docs/doccmd.py): a
venv installed through the link would get scripts pointing at a directory that is gone."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_setup_through_a_symlinked_tree_targets_the_real_repository(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml", ".venv"):
        (tmp_path / name).symlink_to(REPO / name)
    # -W: as if pyproject.toml had just changed, so the venv setup is due; -n: only print it
    # --no-print-directory: under `make test` the nested make would name its directory.
    dry_run = subprocess.run(["make", "--no-print-directory", "-n", "-W", "pyproject.toml", "demo"],
                             cwd=tmp_path,
                             capture_output=True, text=True, check=True, timeout=60).stdout
    assert "pip install" in dry_run
    assert str(tmp_path) not in dry_run
    assert f"{REPO}/.venv/bin/python -m pip install" in dry_run
    assert f"-e '{REPO}[test]'" in dry_run
