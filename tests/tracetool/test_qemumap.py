"""The QEMU function the HTML journey shows for each event agrees with docs/qemu-map.md
("Where each event fires"), and every event of a frame's journey has one."""

from __future__ import annotations

import importlib
import re

from emu.core.trace import EVENT_NAMES
from emu.tracetool.qemumap import QEMU_MAP
from tests.tracetool.support import REPO


def doc_rows() -> dict[str, str]:
    """event -> the QEMU column of its row in docs/qemu-map.md's event table."""
    rows = {}
    for line in (REPO / "docs" / "qemu-map.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3:
            for event in re.findall(r"`([a-z0-9_]+)`", cells[0]):
                rows[event] = cells[2]
    return rows


def test_the_table_names_real_events_and_covers_a_frames_journey():
    assert set(QEMU_MAP) <= set(EVENT_NAMES)
    # the events journey.event_arrow draws as steps of a frame (newer events fall back
    # to pointing at the docs)
    assert {"ne2000_ioport_read", "ne2000_ioport_write", "ne2000_dma_start",
            "ne2000_dma_done", "ne2000_transmit", "ne2000_receive", "ne2000_receive_drop",
            "irq_set", "net_queue_send", "net_queue_send_batch", "net_queue_append",
            "net_queue_drop", "net_socket_read", "net_socket_write", "net_hub_forward",
            } <= set(QEMU_MAP)


def test_the_qemu_functions_are_the_docs():
    rows = doc_rows()
    for event, (_toynic, qemu) in QEMU_MAP.items():
        if event not in rows:
            continue
        function = qemu.split(" (")[0].split(", ")[0].replace("the E8390_TRANS branch of ", "")
        assert function in rows[event], (event, function, rows[event])


def resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(dotted)


def test_the_toynic_functions_exist():
    for event, (toynic, _qemu) in QEMU_MAP.items():
        name = toynic.split(" ")[0].rstrip(",")
        assert resolve(name) is not None, event
