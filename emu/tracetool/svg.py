"""A journey Diagram as SVG text (QEMU: none). Standard library only: SVG is XML.

Lifelines are vertical lines under a labelled box, grouped under their machine's name;
arrows run top to bottom, one row each, inside a shaded band per frame. Each arrow is a
`<g class="arrow">` carrying its trace line, its place in the trace and the toynic and
QEMU functions as `data-` attributes (the HTML page shows them on a click) and as a
`<title>` (a tooltip in any SVG viewer).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from emu.tracetool.journey import Arrow, Diagram, Lifeline, hex_dump

LEFT = 96  # the time column
TOP = 74  # machine band + lifeline boxes
SPACING = 128
WIRE_GAP = 330  # between two machines' wires: room for the frame's bytes
RIGHT = 150
ROW = 22
WIRE_ROW = 44
HEADER = 30
BOTTOM = 24
CHAR_W = 6.4  # 11px sans-serif, an average glyph
MACHINE_COLOURS = ("#dbe9f6", "#fde6cf", "#dff2df", "#efe0f3", "#f6f2d0")
STYLE = """
  text { font-family: 'DejaVu Sans', Verdana, Arial, sans-serif; font-size: 11px; fill: #1d2430; }
  .machine { font-size: 14px; font-weight: bold; }
  .layer { font-size: 11.5px; font-weight: bold; }
  .frame { font-size: 12px; font-weight: bold; }
  .time { font-family: 'DejaVu Sans Mono', monospace; font-size: 10px; fill: #5b6475; }
  .bytes { font-family: 'DejaVu Sans Mono', monospace; font-size: 10px; fill: #40506a; }
  .label { paint-order: stroke; stroke: #ffffff; stroke-width: 3px; }
  .lifeline { stroke: #9aa4b5; stroke-width: 1; stroke-dasharray: 4 3; }
  .arrow line, .arrow path { stroke: #24406b; stroke-width: 1.3; fill: none; }
  .arrow.reply line { stroke-dasharray: 5 3; stroke: #4f6a8f; }
  .arrow.drop line, .arrow.drop path { stroke: #c0392b; }
  .arrow.wire line { stroke: #111111; stroke-width: 2.6; }
  .arrow line.hit, .arrow path.hit { stroke: transparent; stroke-width: 12;
                                     stroke-dasharray: none; }
  .arrow:hover line, .arrow:hover path { stroke: #d35400; }
  .arrow.selected line, .arrow.selected path { stroke: #d35400; stroke-width: 2.6; }
"""


def _x_positions(lifelines: list[Lifeline]) -> dict[Lifeline, float]:
    xs: dict[Lifeline, float] = {}
    x = float(LEFT + SPACING / 2)
    previous: Lifeline | None = None
    for line in lifelines:
        if previous is not None:
            between_wires = previous.layer == "wire" and line.layer == "wire"
            x += WIRE_GAP if between_wires else SPACING
        xs[line] = x
        previous = line
    return xs


def _text(x: float, y: float, content: str, cls: str = "", anchor: str = "middle") -> str:
    klass = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>'
            f"{escape(content)}</text>")


def format_time(ns: int) -> str:
    """Virtual time for a label: the unit that keeps the number short."""
    if ns < 10_000:
        return f"{ns} ns"
    if ns < 10_000_000:
        return f"{ns / 1_000:.3f} µs"
    return f"{ns / 1_000_000:.3f} ms"


def _attrs(arrow: Arrow, index: int) -> str:
    toynic, qemu = arrow.functions
    when = format_time(arrow.time_ns) if arrow.time_ns is not None else ""
    data = {"data-i": str(index), "data-line": arrow.trace_line, "data-ref": arrow.ref,
            "data-time": when, "data-toynic": toynic, "data-qemu": qemu,
            "data-event": arrow.event.name if arrow.event else "wire"}
    if arrow.time_ns is not None:
        data["data-ns"] = str(arrow.time_ns)
    if arrow.style == "wire" and arrow.detail and not arrow.detail.startswith("("):
        data["data-hex"] = arrow.detail
    return " ".join(f"{key}={quoteattr(value)}" for key, value in data.items())


def _arrow(arrow: Arrow, index: int, xs: dict[Lifeline, float], y: float,
           full_hex: dict[int, str]) -> list[str]:
    x1, x2 = xs[arrow.src], xs[arrow.dst]
    classes = f"arrow {arrow.style}"
    title = f"{arrow.ref}  {arrow.trace_line}"
    out = [f'<g class="{classes}" {_attrs(arrow, index)}><title>{escape(title)}</title>']
    if index in full_hex:
        out[0] = out[0].replace("<title>", f"<desc>{escape(full_hex[index])}</desc><title>", 1)
    if x1 == x2:  # a note on one lifeline: a small loop
        path = f"M{x1:.1f},{y - 5:.1f} h22 v10 h-20"
        out.append(f'<path class="hit" d="{path}"/><path d="{path}" marker-end="url(#head)"/>')
        out.append(_text(x1 + 27, y + 4, arrow.label, "label", "start"))
    else:
        marker = "url(#head-wire)" if arrow.style == "wire" else "url(#head)"
        out.append(f'<line class="hit" x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}"/>')
        out.append(f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" '
                   f'marker-end="{marker}"/>')
        middle = (x1 + x2) / 2
        width = len(arrow.label) * CHAR_W
        left = min(x1, x2)
        # A label longer than its arrow starts at the arrow's left end instead of centring.
        if width > abs(x2 - x1) - 8:
            out.append(_text(left + 6, y - 4, arrow.label, "label", "start"))
        else:
            out.append(_text(middle, y - 4, arrow.label, "label"))
        if arrow.detail:
            out.append(_text(middle, y + 13, arrow.detail, "bytes label"))
    out.append("</g>")
    return out


def render(diagram: Diagram, title: str = "toynic: a frame's journey") -> str:
    """The whole SVG document."""
    lines = diagram.lifelines
    xs = _x_positions(lines)
    width = int(max(xs.values(), default=LEFT) + RIGHT)
    bands: list[str] = []
    body: list[str] = []
    y = float(TOP + 16)
    index = 0
    for number, group in enumerate(diagram.groups):
        height = HEADER + sum(WIRE_ROW if a.style == "wire" else ROW for a in group.arrows) + 6
        shade = "#f4f6fa" if number % 2 == 0 else "#ffffff"
        # bands go under the lifelines, the arrows over them
        bands.append(f'<rect class="band" x="4" y="{y:.1f}" width="{width - 8}" '
                     f'height="{height}" fill="{shade}" stroke="#d5dae3"/>')
        body.append(f'<g class="frame-group" data-frame="{group.frame.number}">')
        body.append(_text(12, y + 19, group.title, "frame", "start"))
        top = y
        y += HEADER + 8
        for arrow in group.arrows:
            full_hex: dict[int, str] = {}
            data = group.frame.data
            if arrow.style == "wire" and data:
                full_hex[index] = hex_dump(data)
            row_y = y + (8 if arrow.style == "wire" else 4)
            when = (format_time(arrow.time_ns) if arrow.time_ns is not None and diagram.timed
                    else arrow.ref)
            body.append(_text(LEFT - 8, row_y + 4, when, "time", "end"))
            body += _arrow(arrow, index, xs, row_y, full_hex)
            y += WIRE_ROW if arrow.style == "wire" else ROW
            index += 1
        y = top + height + 6
        body.append("</g>")
    height = int(y + BOTTOM)
    head = _heads(lines, xs, height)
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" class="journey">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "<defs>",
        '<marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#24406b"/></marker>',
        '<marker id="head-wire" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="5" '
        'markerHeight="5" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#111111"/></marker>',
        "</defs>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        *bands, *head, *body, "</svg>", ""])


def _heads(lines: list[Lifeline], xs: dict[Lifeline, float], height: int) -> list[str]:
    """Machine bands, lifeline boxes and the dashed lifelines themselves."""
    out: list[str] = []
    machines = list(dict.fromkeys(line.machine for line in lines))
    for number, machine in enumerate(machines):
        mine = [xs[line] for line in lines if line.machine == machine]
        left, right = min(mine) - SPACING / 2 + 6, max(mine) + SPACING / 2 - 6
        colour = MACHINE_COLOURS[number % len(MACHINE_COLOURS)]
        out.append(f'<g class="machine-band" data-machine={quoteattr(machine)}>'
                   f'<rect x="{left:.1f}" y="6" width="{right - left:.1f}" height="{TOP - 10}" '
                   f'rx="6" fill="{colour}"/>'
                   + _text((left + right) / 2, 24, f"machine {machine}", "machine") + "</g>")
    for line in lines:
        x = xs[line]
        colour = MACHINE_COLOURS[machines.index(line.machine) % len(MACHINE_COLOURS)]
        out.append(f'<g class="lifeline-head" data-machine={quoteattr(line.machine)} '
                   f'data-layer="{line.layer}">'
                   f'<line class="lifeline" x1="{x:.1f}" y1="{TOP:.1f}" x2="{x:.1f}" '
                   f'y2="{height - 8}"/>'
                   f'<rect x="{x - 54:.1f}" y="36" width="108" height="26" rx="4" '
                   f'fill="#ffffff" stroke="#7d8799"/>'
                   f'<rect x="{x - 54:.1f}" y="36" width="108" height="4" fill="{colour}"/>'
                   + _text(x, 54, line.label, "layer") + "</g>")
    return out
