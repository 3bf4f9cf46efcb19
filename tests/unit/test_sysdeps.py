"""`make test` installs every tool the tests and the documentation blocks run (issue 9,
item 17): each command a console block of README.md or docs/ runs, each tool a block
`needs=`, and each program tests/ or bench/ look up or start is either in
scripts/install-sysdeps' table, part of Debian's essential set, or in the venv."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from tests.docs.doccmd import parse_blocks

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install-sysdeps"
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Essential Debian packages (coreutils, grep, sed, dash, bash, findutils) are on every
# system; make runs `make test` itself; the venv brings the rest.
ESSENTIAL = frozenset({
    "basename", "bash", "cat", "cmp", "cp", "cut", "date", "dirname", "env", "find", "grep",
    "head", "ls", "mkdir", "mktemp", "mv", "rm", "sed", "seq", "sh", "sleep", "sort",
    "tail", "tee", "timeout", "touch", "tr", "uniq", "wc", "xargs",
})
PRESUPPOSED = frozenset({"make"})
VENV = frozenset({"toynic", "python", "python3", "ruff", "pytest"})
# Where a command starts in a shell line: line start, after a pipe, a list operator, a
# subshell or substitution, a `sh -c "` string, a compound-command keyword, `timeout N`.
COMMAND_STARTS = (r"^", r"\|\|?", r"&&?", r";", r"\$\(", r"\(", r"`", r'\s-c\s+"',
                  r"\b(?:until|while|do|then|else|if|elif|exec|!)\s", r"\btimeout\s+\S+\s")
COMMAND_WORD = [re.compile(start + r"\s*([A-Za-z_][\w.+-]*=?)") for start in COMMAND_STARTS]
RUNNERS = frozenset({"which", "run", "Popen", "call", "check_call", "check_output"})
RUNNER_MODULES = frozenset({"shutil", "subprocess"})


def installed_by_sysdeps() -> dict[str, str]:
    listing = subprocess.run([str(SCRIPT), "--list"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    return dict(line.split() for line in listing.splitlines())


def shell_keywords_and_builtins() -> set[str]:
    out = subprocess.run(["bash", "-c", "compgen -b; compgen -k"], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return set(out.split())


def command_words(command: str) -> set[str]:
    """The commands a shell line runs (single-quoted text is data, not commands)."""
    text = re.sub(r"'[^']*'", "''", command.replace("\\\n", " "))
    words = {m.group(1) for pattern in COMMAND_WORD for m in pattern.finditer(text)}
    return {word for word in words if not word.endswith("=")}  # assignments


def documented_tools() -> dict[str, str]:
    """tool -> where a console block runs or needs it."""
    found = {}
    for document in DOCUMENTS:
        for block in parse_blocks(document.read_text()):
            where = f"{document.name}:{block.line}"
            for need in block.needs:
                if "/" not in need:
                    found.setdefault(need, where)
            for command in block.commands:
                for word in command_words(command.text):
                    found.setdefault(word, where)
    return found


def programs_in_source(path: Path) -> set[str]:
    """Programs a module passes to shutil.which() or starts with subprocess by name
    (`subprocess.run(["make", ...])`)."""
    tree = ast.parse(path.read_text(), str(path))
    constants = {
        target.id: node.value.value
        for node in tree.body if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets if isinstance(target, ast.Name)
    }

    def text(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id not in RUNNER_MODULES or func.attr not in RUNNERS:
                continue
        elif not (isinstance(func, ast.Name) and func.id == "which"):
            continue
        first = node.args[0]
        if isinstance(first, ast.List) and first.elts:
            first = first.elts[0]
        program = text(first)
        if program and re.fullmatch(r"[A-Za-z][\w.+-]*", program):
            found.add(program)
    return found


def tools_the_tests_run() -> dict[str, str]:
    found = {}
    for path in sorted([*(REPO / "tests").rglob("*.py"), *(REPO / "bench").rglob("*.py")]):
        for program in programs_in_source(path):
            found.setdefault(program, str(path.relative_to(REPO)))
    return found


def test_the_list_names_a_debian_package_per_tool() -> None:
    tools = installed_by_sysdeps()
    assert tools["tshark"] == "tshark"
    assert tools["qemu-system-x86_64"] == "qemu-system-x86"
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", package) for package in tools.values())


def test_command_words_are_found_where_a_shell_starts_a_command() -> None:
    line = ("timeout 10 sh -c \"until ss -ltn | grep -q x; do sleep 0.1; done\" && "
            "kill $(cat q.pid); python -c 'import a; srv(1)'; A_PORT=1; toynic -m 1")
    assert command_words(line) == {"timeout", "sh", "until", "ss", "grep", "do", "sleep",
                                   "done", "kill", "cat", "python", "toynic"}


def test_every_documented_command_is_installed() -> None:
    known = set(installed_by_sysdeps()) | ESSENTIAL | PRESUPPOSED | VENV
    known |= shell_keywords_and_builtins()
    unknown = {tool: where for tool, where in documented_tools().items() if tool not in known}
    assert unknown == {}, "add these to scripts/install-sysdeps (or to ESSENTIAL here)"


def test_every_program_the_tests_run_is_installed() -> None:
    known = set(installed_by_sysdeps()) | ESSENTIAL | PRESUPPOSED | VENV
    unknown = {tool: where for tool, where in tools_the_tests_run().items() if tool not in known}
    assert unknown == {}, "add these to scripts/install-sysdeps"


def test_the_scans_see_the_tools_in_use_today() -> None:
    """The scans are not vacuous: they find the tools this tree is known to run."""
    assert {"tshark", "qemu-system-x86_64", "ss", "xxd"} <= set(documented_tools())
    assert {"qemu-system-x86_64", "ip", "riscv64-unknown-elf-gcc", "riscv64-unknown-elf-as",
            "make"} <= set(tools_the_tests_run())
