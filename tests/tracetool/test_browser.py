"""The journey in a real browser (headless Chromium, Debian's `chromium`): the HTML page
and the SVG are drawn (a screenshot that is not blank), the lifeline labels are in the
DOM, the page's script ran and a click target shows its QEMU function, and the browser
logged no script errors. The browsers run side by side to keep the test short."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from emu.tracetool.cli import main
from tests.netsupport import unavailable
from tests.tracetool.support import recording

WINDOW = "1400,900"


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        unavailable("chromium is not installed (scripts/install-sysdeps installs it)")
    return path


def browser(binary: str, profile: Path, url: str, *action: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", "--disable-background-networking",
         f"--user-data-dir={profile}", f"--window-size={WINDOW}", "--enable-logging=stderr",
         "--v=0", *action, url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def png_pixels(path: Path) -> tuple[int, int, int]:
    """(width, height, pixels that are not white) of an 8-bit RGB or RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunk = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6)
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    coloured = 0
    for row in range(height):
        kind = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        _unfilter(kind, line, previous, channels)
        # a pixel is "not white" when any of its colour bytes is below 0xf0
        pixels = line if channels == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3)
        coloured += sum(1 for i in range(0, len(pixels), 3) if min(pixels[i:i + 3]) < 0xF0)
        previous = line
    return width, height, coloured


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    if kind == 1:
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        line[:] = bytes((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
    elif kind == 3:
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF


def script_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "Uncaught" in line or ("CONSOLE" in line and "error" in line.lower())]


@pytest.mark.timeout(120)
def test_the_journey_in_headless_chromium(tmp_path):
    binary = chromium()
    page, picture = tmp_path / "ping.html", tmp_path / "ping.svg"
    assert main(["journey", *recording(), "--match", "icmp", "-o", str(page)]) == 0
    assert main(["journey", *recording(), "--match", "icmp", "-o", str(picture)]) == 0
    shots = {name: tmp_path / f"{name}.png" for name in ("html", "svg")}
    runs = {
        "html": browser(binary, tmp_path / "p1", page.as_uri(), f"--screenshot={shots['html']}"),
        "svg": browser(binary, tmp_path / "p2", picture.as_uri(),
                       f"--screenshot={shots['svg']}"),
        "dom": browser(binary, tmp_path / "p3", page.as_uri() + "#arrow=5", "--dump-dom"),
    }
    results = {name: finish(process) for name, process in runs.items()}
    for name, (_out, err) in results.items():
        assert runs[name].returncode == 0, err[-2000:]
        assert script_errors(err) == [], name
    for name, shot in shots.items():
        width, height, coloured = png_pixels(shot)
        assert (width, height) == (1400, 900), name
        # lifelines, arrows and labels cover a good part of the window, not all of it
        assert 0.02 * width * height < coloured < 0.9 * width * height, (name, coloured)
    dom = results["dom"][0]
    assert 'data-ready="yes"' in dom and '<pre id="errors"></pre>' in dom
    for label in ("machine A", "machine B", "guest driver", "NE2000", "net queue",
                  "socket/hub", "wire", "ICMP echo request 10.0.0.2 → 10.0.0.1"):
        assert label in dom, label
    details = dom.split('id="details"', 1)[1]
    assert "QEMU" in details and "net_socket_receive → TCP → net_socket_send" in details
