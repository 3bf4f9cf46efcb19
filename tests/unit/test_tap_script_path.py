"""`script=NAME` without a slash is a path relative to the working directory, as QEMU's
launch_script runs it (execv, no PATH search): `script=ifup` runs ./ifup,
never an ifup found on PATH. Before this fix toynic searched PATH, so `script=true` ran
/usr/bin/true. In a test-made network namespace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts
from netdev.tap import create_tap_netdev
from tests.netsupport import in_netns


def _with_script(workdir: str, script: str) -> str:
    os.chdir(workdir)
    log = Path(workdir) / "log"
    up = Path(workdir) / "up"
    up.write_text(f'#!/bin/sh\necho "ran $0 $1" >> {log}\n')
    up.chmod(0o755)
    loop = MainLoop()
    try:
        client = create_tap_netdev(loop, "t0", parse_opts(
            f"tap,id=t0,ifname=tn0,script={script},downscript=no", "type"))
        client.cleanup()
    except UserError as err:
        return f"error: {err}"
    finally:
        loop.close()
    return log.read_text() if log.exists() else "nothing ran"


@pytest.mark.netns
@pytest.mark.parametrize(("script", "outcome"), [
    ("up", "ran ./up tn0\n"),
    ("./up", "ran ./up tn0\n"),
    ("true", "error: could not launch network script true: No such file or directory "
             "(script=no / downscript=no run none)"),
])
def test_a_script_name_is_a_path_not_a_command(tmp_path: Path, script: str,
                                              outcome: str) -> None:
    assert in_netns(_with_script, str(tmp_path), script) == outcome
