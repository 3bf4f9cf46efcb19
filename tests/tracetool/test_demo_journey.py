"""`make demo` leaves demo-journey.svg next to demo.pcap and names it in its summary: a
valid SVG naming both machines, whose first echo request crosses every layer boundary."""

from __future__ import annotations

import itertools
import subprocess
import sys
import xml.etree.ElementTree as ET

from emu.tracetool.journey import LAYERS
from tests.tracetool.support import REPO, SVG, arrows, groups, lifelines


def test_the_demo_draws_the_first_echo_request_and_its_reply(tmp_path):
    result = subprocess.run([sys.executable, "-m", "emu.demo"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    journey = tmp_path / "demo-journey.svg"
    assert f"journey: {journey} (the first echo request and its reply)" in result.stdout
    assert (tmp_path / "demo.pcap").exists()
    root = ET.parse(journey).getroot()
    assert sorted(lifelines(root)) == sorted((m, layer) for m in "AB" for layer in LAYERS)
    titles = ["".join(t.itertext()) for g in groups(root) for t in g.iter(SVG + "text")
              if t.get("class") == "frame"]
    assert [t.split(",")[0] for t in titles] == [
        "frame 3: ICMP echo request 10.0.0.2 → 10.0.0.1 seq=1",
        "frame 4: ICMP echo reply 10.0.0.1 → 10.0.0.2 seq=1"]
    request = groups(root)[0]
    x_of = {(g.get("data-machine"), g.get("data-layer")):
            float(g.find(SVG + "line").get("x1")) for g in root.iter(SVG + "g")
            if g.get("class") == "lifeline-head"}
    spans = set()
    for arrow in arrows(request):
        line = arrow.find(SVG + "line[@marker-end]")
        if line is not None:
            spans.add(tuple(sorted((float(line.get("x1")), float(line.get("x2"))))))
    order = [x_of[("B", layer)] for layer in LAYERS] + \
        [x_of[("A", layer)] for layer in reversed(LAYERS)]
    for left, right in itertools.pairwise(order):
        assert (left, right) in spans, (left, right)
