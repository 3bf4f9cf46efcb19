"""The journey of one recorded ping (docs/img/journey): frames cut and joined across the
two machines, and the SVG's structure: valid XML, one lifeline per layer and machine,
arrows in time order inside each frame."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from emu.tracetool import svg
from emu.tracetool.journey import LAYERS, LEVELS, build, diagram
from emu.tracetool.parse import load
from tests.tracetool.support import arrow_y, arrows, groups, lifelines, recording, timed_merge

TITLES = [
    "frame 1: ARP who has 10.0.0.1? tell 10.0.0.2, 60 bytes, B → A",
    "frame 2: ARP reply 10.0.0.1 is at 52:54:00:00:00:0a, 60 bytes, A → B",
    "frame 3: ICMP echo request 10.0.0.2 → 10.0.0.1 seq=1, 98 bytes, B → A",
    "frame 4: ICMP echo reply 10.0.0.1 → 10.0.0.2 seq=1, 98 bytes, A → B",
]


def story(paths):
    inputs = load(paths)
    return build(inputs.events, inputs.machines, inputs.captures)


def test_four_frames_each_sent_by_one_machine_and_received_by_the_other():
    ping = story(recording())
    assert [(f.tx.machine, [s.machine for s in f.rx]) for f in ping.frames] == [
        ("B", ["A"]), ("A", ["B"]), ("B", ["A"]), ("A", ["B"])]
    assert [f.length for f in ping.frames] == [60, 60, 98, 98]
    assert [d.title for d in diagram(ping, ping.frames, "dma").groups] == TITLES


def test_causal_order_a_read_never_precedes_its_write():
    for frame in story(recording()).frames:
        (rx,) = frame.rx
        assert frame.tx.wire_event.name == "net_socket_write"
        assert rx.wire_event.name == "net_socket_read"
        assert frame.tx.wire_event.seq < rx.wire_event.seq


def render(paths, level="dma"):
    ping = story(paths)
    return ET.fromstring(svg.render(diagram(ping, ping.frames, level)).encode())


@pytest.mark.parametrize("level", LEVELS)
def test_svg_has_one_lifeline_per_layer_and_machine(level):
    root = render(recording(), level)
    heads = lifelines(root)
    assert sorted(heads) == sorted((m, layer) for m in ("A", "B") for layer in LAYERS)
    assert len(groups(root)) == 4


def test_more_detail_means_more_arrows():
    counts = [sum(len(arrows(g)) for g in groups(render(recording(), level)))
              for level in LEVELS]
    assert counts[0] < counts[1] < counts[2]


def test_every_layer_boundary_is_crossed_by_the_echo_request():
    """Guest → NE2000 → queue → socket → wire → wire → socket → queue → NE2000 → guest."""
    ping = story(recording())
    request = ping.frames[2]
    steps = {(a.src.machine, a.src.layer, a.dst.machine, a.dst.layer)
             for a in diagram(ping, [request], "frame").groups[0].arrows}
    chain = [("B", layer) for layer in LAYERS] + [("A", layer) for layer in reversed(LAYERS)]
    for (m1, l1), (m2, l2) in itertools.pairwise(chain):
        assert (m1, l1, m2, l2) in steps or (m2, l2, m1, l1) in steps, (l1, l2)


def test_arrows_run_down_the_page_in_virtual_time_order(tmp_path):
    merged = tmp_path / "lab.trace"
    merged.write_text(timed_merge(recording()))
    root = render([str(merged), recording()[2]], "register")
    assert sorted(lifelines(root)) == sorted((m, layer) for m in ("A", "B") for layer in LAYERS)
    for group in groups(root):
        rows = arrows(group)
        ys = [arrow_y(a) for a in rows]
        assert ys == sorted(ys) and len(set(ys)) == len(ys)
        times = [int(a.get("data-ns")) for a in rows]
        assert times == sorted(times), group.get("data-frame")


def test_the_wire_arrow_shows_the_frames_bytes():
    root = render(recording(), "frame")
    wire = [a for g in groups(root) for a in arrows(g) if "wire" in a.get("class")]
    assert len(wire) == 4
    assert wire[2].get("data-hex").startswith("52 54 00 00 00 0a 52 54 00 00 00 0b 08 00")


def test_without_a_pcap_frames_are_described_by_length():
    ping = story(recording()[:2])
    assert diagram(ping, ping.frames, "dma").groups[2].title == "frame 3: 98 bytes, B → A"
