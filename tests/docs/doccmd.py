"""Runnable shell sessions in Markdown (QEMU: none; in the spirit of Python's doctest).

The convention, chosen so the docs still read as ordinary terminal transcripts:

- Only fenced blocks whose info string starts with `console` are run. Other blocks
  (```` ```sh ````, ```` ```text ````, plain ```` ``` ````) are illustrations.
- In a console block, a line starting with `$ ` is a command; a command line ending in
  a backslash continues on the next line (as in a shell).
- The lines after a command, up to the next command, are output that must appear in
  what the command printed (stdout and stderr together). Each expected line must match
  one printed line, in any order; `...` inside a line matches any text, runs of spaces
  match any runs of spaces, and a line that is only `...` marks omitted output.
- A command must exit 0, unless its line ends in the comment `# exit N`.
- Every console block of one file runs, in order, in one bash session whose working
  directory is a fresh temporary directory holding links to the repository's top-level
  entries (so `emu/guests/ping.elf` and `make demo` work, and files the commands write
  land in the temporary directory). `toynic` is on PATH.
- An assignment `SOMETHING_PORT=5555` or `PORT=5555` gets a free 127.0.0.1 port instead
  of the number shown, so readers see a plain port and tests never collide.
- A block whose info string names tools (```` ```console needs=qemu-system-x86_64 ````)
  is left out when one of them is missing, unless CI=true; such blocks must stand alone.
  A need containing a slash is a path in the repository (`needs=.venv/bin/python`).
- Background jobs (`cmd &`) still running when the file's session ends are killed, and
  the whole session has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from emu.testing import free_port

REPO = Path(__file__).resolve().parents[2]
SKIPPED_ENTRIES = frozenset({".git", ".hypothesis", ".pytest_cache", ".ruff_cache", "build"})
PORT_ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?(?:[A-Z0-9_]*_)?PORT)=(\d+)\s*$")
EXIT_COMMENT = re.compile(r"#\s*exit\s+(\d+)\s*$")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*(.*)$")


@dataclass
class Command:
    """One `$ ` command of a document, with what it must print and how it must exit."""

    text: str
    line: int
    expected: list[str] = field(default_factory=list)
    status: int = 0


@dataclass
class Block:
    """One runnable console block: its commands and the tools it needs."""

    line: int
    commands: list[Command]
    needs: tuple[str, ...] = ()


def parse_blocks(markdown: str) -> list[Block]:
    """Every console block of a Markdown text, in document order."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group(2), match.group(3).split()
        body: list[str] = []
        start = i + 1
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        if info and info[0] == "console":
            needs: tuple[str, ...] = ()
            for word in info[1:]:
                key, _, value = word.partition("=")
                if key == "needs":
                    needs = tuple(filter(None, value.split(",")))
            blocks.append(Block(start, _parse_commands(body, start + 1), needs))
    return blocks


def _parse_commands(body: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    i = 0
    while i < len(body):
        text = body[i]
        if text.startswith("$ "):
            parts = [text[2:]]
            line = first_line + i
            while parts[-1].endswith("\\") and i + 1 < len(body):
                i += 1
                parts.append(body[i])
            command = Command("\n".join(parts), line)
            exit_match = EXIT_COMMENT.search(parts[-1])
            if exit_match:
                command.status = int(exit_match.group(1))
            commands.append(command)
        elif commands and text.strip() and text.strip() != "...":
            commands[-1].expected.append(text.rstrip())
        i += 1
    return commands


def line_matches(expected: str, actual: str) -> bool:
    """`expected` equals `actual`, with each `...` in `expected` standing for any text and
    any run of spaces standing for any other (terminal columns shift with the values)."""
    parts = (" ".join(part.split()) for part in expected.split("..."))
    pattern = ".*".join(re.escape(part) for part in parts)
    return re.fullmatch(pattern, " ".join(actual.split())) is not None


def missing_lines(expected: list[str], output: str) -> list[str]:
    """Expected lines that cannot each get a printed line of their own (a maximum
    bipartite matching, so a loose pattern never steals the line an exact one needs)."""
    printed = output.splitlines()
    candidates = [[i for i, got in enumerate(printed) if line_matches(want, got)]
                  for want in expected]
    owner: dict[int, int] = {}

    def assign(want: int, seen: set[int]) -> bool:
        for line in candidates[want]:
            if line in seen:
                continue
            seen.add(line)
            if line not in owner or assign(owner[line], seen):
                owner[line] = want
                return True
        return False

    return [want for index, want in enumerate(expected) if not assign(index, set())]


def with_free_ports(text: str) -> str:
    """Replace the number of every `...PORT=N` assignment line with a free port."""
    lines = []
    for line in text.split("\n"):
        match = PORT_ASSIGNMENT.match(line)
        lines.append(f"{match.group(1)}={free_port()}" if match else line)
    return "\n".join(lines)


@dataclass
class Result:
    """What one command printed and its exit status (None: it never finished)."""

    command: Command
    output: str
    status: int | None


@dataclass
class Session:
    """The outcome of running a document's blocks."""

    results: list[Result]
    skipped: list[Block]
    timed_out: bool
    transcript: str


def tools_missing(block: Block) -> list[str]:
    """Needed tools not on PATH; a need with a slash is a file of the repository."""
    return [tool for tool in block.needs if not _available(tool)]


def _available(tool: str) -> bool:
    if "/" in tool:
        return (REPO / tool).exists()
    return shutil.which(tool) is not None


def run_blocks(blocks: list[Block], timeout: float) -> Session:
    """Run the blocks in one bash session in a scratch directory; see the module docstring."""
    token = f"@@doc-{secrets.token_hex(6)}@@"
    skipped = [b for b in blocks if tools_missing(b) and os.environ.get("CI") != "true"]
    commands = [c for b in blocks if b not in skipped for c in b.commands]
    script = ["exec 2>&1"]
    for index, command in enumerate(commands):
        script.append(f"printf '\\n{token} start {index}\\n'")
        script.append(with_free_ports(command.text))
        script.append(f"printf '\\n{token} end {index} %d\\n' $?")
    script.append("kill $(jobs -p) 2>/dev/null; wait 2>/dev/null")
    with tempfile.TemporaryDirectory(prefix="toynic-docs-") as scratch:
        workdir = Path(scratch) / "work"
        workdir.mkdir()
        for entry in REPO.iterdir():
            if entry.name not in SKIPPED_ENTRIES:
                (workdir / entry.name).symlink_to(entry)
        script_path = Path(scratch) / "session.sh"
        script_path.write_text("\n".join(script) + "\n")
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", str(script_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=workdir, env=env,
            start_new_session=True,
        )
        timed_out = False
        try:
            raw, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            raw, _ = process.communicate()
        finally:
            # Background jobs of the session share its process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    transcript = raw.decode(errors="replace")
    return Session(_split(transcript, token, commands), skipped, timed_out, transcript)


def _split(transcript: str, token: str, commands: list[Command]) -> list[Result]:
    results: list[Result] = []
    marker = re.compile(rf"^{re.escape(token)} (start|end) (\d+)(?: (\d+))?$", re.M)
    current: int | None = None
    start = 0
    outputs: dict[int, str] = {}
    statuses: dict[int, int] = {}
    for match in marker.finditer(transcript):
        index = int(match.group(2))
        if match.group(1) == "start":
            current, start = index, match.end()
        elif current == index:
            outputs[index] = transcript[start:match.start()]
            statuses[index] = int(match.group(3))
            current = None
    if current is not None:
        outputs[current] = transcript[start:]
    for index, command in enumerate(commands):
        results.append(Result(command, outputs.get(index, ""), statuses.get(index)))
    return results


def problems(session: Session, document: str) -> list[str]:
    """One message per command that exited wrongly or did not print what the doc shows."""
    found: list[str] = []
    for result in session.results:
        where = f"{document}:{result.command.line}: $ {result.command.text}"
        if result.status is None:
            reason = "timed out" if session.timed_out else "did not run"
            found.append(f"{where}\n  {reason}; output so far:\n{_indent(result.output)}")
            break
        if result.status != result.command.status:
            found.append(f"{where}\n  exit status {result.status}, expected "
                         f"{result.command.status}; output:\n{_indent(result.output)}")
            continue
        missing = missing_lines(result.command.expected, result.output)
        if missing:
            found.append(f"{where}\n  missing output lines:\n{_indent(chr(10).join(missing))}"
                         f"\n  actual output:\n{_indent(result.output)}")
    return found


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.strip("\n").splitlines())
