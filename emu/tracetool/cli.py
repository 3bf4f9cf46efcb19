"""`toynic-trace`: pictures and numbers from trace files — toynic's counterpart of QEMU's
scripts/simpletrace.py.

    toynic-trace journey TRACE... -o OUT.svg|OUT.html [--frame N[-M]] [--match TEXT]
                         [--level frame|dma|register] [--count N]
    toynic-trace summary TRACE...

TRACE is a `-trace ... -D FILE` output, one per machine (the machine is named after the
file unless the lines name it), or a pcap (`-object filter-dump`) that gives the frames
their bytes. Every user error is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from emu.core.opts import shown
from emu.tracetool import html, svg
from emu.tracetool.journey import LEVELS, Frame, Story, build, diagram, matches
from emu.tracetool.parse import TraceError, load
from emu.tracetool.summary import summarize

PROG = "toynic-trace"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 1."""

    def error(self, message: str) -> NoReturn:
        raise TraceError(message)


def _frame_numbers(text: str) -> range:
    first, dash, last = text.partition("-")
    try:
        low = int(first)
        high = int(last) if dash else low
    except ValueError:
        raise TraceError(f"--frame {shown(text)}: expected N or N-M") from None
    if low < 1 or high < low:
        raise TraceError(f"--frame {shown(text)}: expected N or N-M with 1 <= N <= M")
    return range(low, high + 1)


def select(story: Story, frames: Sequence[str] = (), match: str | None = None,
           count: int | None = None) -> list[Frame]:
    """The frames `--frame`, `--match` and `--count` pick; TraceError if none."""
    chosen = list(story.frames)
    if frames:
        # Checked against the traces before any range is walked: N-M may be huge.
        wanted = [_frame_numbers(text) for text in frames]
        for text, numbers in zip(frames, wanted, strict=True):
            if numbers[-1] > len(story.frames):
                raise TraceError(f"--frame {shown(text)}: the traces hold "
                                 f"{len(story.frames)} frames")
        chosen = [f for f in chosen if any(f.number in numbers for numbers in wanted)]
    if match is not None:
        chosen = [f for f in chosen if matches(f, match)]
        if not chosen:
            hint = ("" if any(f.data for f in story.frames)
                    else " (protocols are known only with a pcap among the inputs)")
            raise TraceError(f"--match {match}: no frame matches{hint}")
    if count is not None:
        chosen = chosen[:count]
    if not chosen:
        raise TraceError("no frames in the traces (trace ne2000_* and net_* events)")
    return chosen


def write_journey(paths: Sequence[str], out: str, frames: Sequence[str] = (),
                  match: str | None = None, level: str = "dma",
                  count: int | None = None) -> int:
    """Draw the journey of the selected frames into `out` (.svg or .html); returns the
    number of frames drawn. TraceError on bad input."""
    kind = Path(out).suffix.lower()
    if kind not in (".svg", ".html", ".htm"):
        raise TraceError(f"-o {out}: the output must end in .svg or .html")
    inputs = load(paths)
    story = build(inputs.events, inputs.machines, inputs.captures)
    chosen = select(story, frames, match, count)
    title = f"toynic: a frame's journey ({', '.join(Path(p).name for p in paths)})"
    text = svg.render(diagram(story, chosen, level), title)
    if kind != ".svg":
        text = html.render(text, title)
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as err:
        raise TraceError(f"-o {out}: {err.strerror or err}") from None
    return len(chosen)


def _parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Sequence diagrams and numbers from toynic "
                     "trace files (-trace ... -D FILE), one file per machine.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    journey = commands.add_parser("journey", help="draw frames' journeys as SVG or HTML")
    journey.add_argument("traces", nargs="+", metavar="TRACE",
                         help="trace files (one per machine) and optional pcap files")
    journey.add_argument("-o", "--output", required=True, metavar="OUT",
                         help="OUT.svg, or OUT.html (click an arrow for its details)")
    journey.add_argument("--frame", action="append", default=[], metavar="N[-M]",
                         help="draw frame N (or N to M); repeatable; numbers as in summary")
    journey.add_argument("--match", metavar="TEXT",
                         help="frames of a protocol (arp, icmp, udp, ...) or whose title or "
                         "trace lines contain TEXT")
    journey.add_argument("--level", choices=LEVELS, default="dma",
                         help="detail: frame hand-offs, plus remote DMA, plus every register")
    journey.add_argument("--count", type=int, metavar="N", help="at most N frames")
    summary = commands.add_parser("summary", help="events per kind, frames, latencies")
    summary.add_argument("traces", nargs="+", metavar="TRACE")
    return parser


def run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "summary":
        inputs = load(args.traces)
        story = build(inputs.events, inputs.machines, inputs.captures)
        if sys.stdout is None:
            raise TraceError("stdout is closed: nowhere to write the summary")
        sys.stdout.write(summarize(inputs.events, story))
        return 0
    if args.count is not None and args.count < 1:
        raise TraceError("--count: expected a positive number")
    drawn = write_journey(args.traces, args.output, args.frame, args.match, args.level,
                          args.count)
    print(f"{PROG}: {drawn} frame(s) drawn into {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except TraceError as err:
        text = " ".join(str(err).split())
        print(f"{PROG}: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
