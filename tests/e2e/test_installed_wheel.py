"""An installed toynic runs its guests (issue 9, item 18).

A wheel built from this tree is installed into a fresh venv outside the repository; from a
directory outside the repository that venv runs `python -m emu.demo` to "5/5 echo replies"
and a small testing-kit test with `lab.machine("echo")`. Nothing is downloaded: the wheel
is built with the setuptools of the test's own venv, and the installed toynic finds its
dependencies (construct, Hypothesis for emu.testing) in the test's venv through a .pth
line, as `--system-site-packages` would give them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = sorted(p.stem for p in (REPO / "guests").glob("*.c"))
# What a build would write next to the sources, and what is not part of the source tree.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                    "__pycache__", ".hypothesis", ".pytest_cache",
                                    ".ruff_cache", "*.pcap")
LAB_TEST = """\
import sys
from pathlib import Path

import emu
from emu.testing import BROADCAST, Lab, ethernet

OTHER = bytes.fromhex("020000000001")


def test_echo_runs_from_the_installed_package():
    assert Path(emu.__file__).is_relative_to(sys.prefix), emu.__file__
    with Lab() as lab:
        wire = lab.peer("wire")
        echo = lab.machine("echo", devices=["ne2k_isa,netdev=wire"])
        assert lab.wait_output(echo, "returning every frame", 30), echo.output
        wire.send(ethernet(BROADCAST, OTHER, 0x88B5, b"hi" * 30))
        assert lab.run_until(lambda: wire.received, 30)
        assert wire.received[0][:6] == OTHER
"""

pytestmark = pytest.mark.timeout(300)


def run(*argv: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run([str(arg) for arg in argv], cwd=cwd, env=env, text=True,
                            capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                            check=False)
    assert result.returncode == 0, (
        f"{argv}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("installed")
    assert not path.is_relative_to(REPO)
    return path


@pytest.fixture(scope="module")
def wheel(work: Path) -> Path:
    major = int(version("setuptools").split(".")[0])
    assert major >= 77, "the wheel build needs setuptools>=77: pip install -e '.[test]'"
    # Built from a copy: a build writes build/ and toynic.egg-info next to the sources.
    source = work / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    out = work / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "--no-index", "-w", out, source, cwd=work)
    [built] = out.glob("toynic-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_python(work: Path, wheel: Path) -> Path:
    venv = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
        "--no-index", wheel, cwd=work)
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                  cwd=work).stdout.strip()
    (Path(purelib) / "toynic-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.fixture
def elsewhere(work: Path, request: pytest.FixtureRequest) -> Path:
    path = work / request.node.name
    path.mkdir()
    return path


def test_the_wheel_ships_every_guest(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    shipped = sorted(Path(n).stem for n in names if n.endswith(".elf"))
    assert shipped == PROGRAMS
    assert all(n.startswith("emu/guests/") for n in names if n.endswith(".elf"))


def test_installed_demo_gets_every_echo_reply(venv_python: Path, elsewhere: Path) -> None:
    where = run(venv_python, "-c", "import emu; print(emu.__file__)", cwd=elsewhere).stdout
    assert Path(where.strip()).is_relative_to(venv_python.parent.parent), where
    result = run(venv_python, "-m", "emu.demo", cwd=elsewhere)
    assert "5/5 echo replies" in result.stdout, result.stdout + result.stderr
    assert (elsewhere / "demo.pcap").is_file()


def test_installed_testing_kit_runs_a_named_guest(venv_python: Path, elsewhere: Path) -> None:
    (elsewhere / "test_lab.py").write_text(LAB_TEST)
    result = run(venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_lab.py",
                 cwd=elsewhere)
    assert "1 passed" in result.stdout, result.stdout
