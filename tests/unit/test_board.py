"""The guests' C header is exactly what the Python board generates."""

from pathlib import Path

from emu.board import layout as board

ROOT = Path(__file__).resolve().parents[2]


def test_board_header_matches_python_board() -> None:
    assert (ROOT / "guests" / "include" / "board.h").read_text() == board.c_header()


def test_header_names_every_device_base() -> None:
    text = board.c_header()
    for name in ("POWER_BASE", "CLINT_BASE", "PLIC_BASE", "UART_BASE", "ISA_BASE", "RAM_BASE"):
        value = getattr(board, name)
        assert f"#define {name:<22} 0x{value:08x}u" in text
