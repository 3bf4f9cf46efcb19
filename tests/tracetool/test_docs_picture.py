"""docs/img/ping-journey.svg never goes stale: it is what toynic-trace draws today from
the recorded ping (docs/img/journey), and the recording tells the story a fresh run of
toynic tells (the same frames, and at frame and DMA level the same steps)."""

from __future__ import annotations

import pytest

from emu.tracetool.cli import main
from emu.tracetool.journey import build, diagram
from emu.tracetool.parse import load
from tests.tracetool.recording import record
from tests.tracetool.support import PICTURE, PICTURE_ARGS, REPO, recording


def test_the_docs_picture_is_what_the_tool_draws(tmp_path, monkeypatch):
    committed = PICTURE.read_text()
    monkeypatch.chdir(REPO)
    out = tmp_path / "ping-journey.svg"
    assert main([*PICTURE_ARGS[:-1], str(out)]) == 0
    if out.read_text() != committed:
        PICTURE.write_text(out.read_text())
        pytest.fail(f"{PICTURE.relative_to(REPO)} was stale and has been redrawn: commit it")


def steps(paths):
    inputs = load(paths)
    story = build(inputs.events, inputs.machines, inputs.captures)
    return [(group.title, [(a.src.machine, a.src.layer, a.dst.machine, a.dst.layer, a.label)
                           for a in group.arrows])
            for group in diagram(story, story.frames, "dma").groups]


def test_the_recording_matches_a_fresh_run(tmp_path):
    fresh = [str(path) for path in record(tmp_path)]
    assert steps([fresh[1], fresh[0], fresh[2]]) == steps(recording())
