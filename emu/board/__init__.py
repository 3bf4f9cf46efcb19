"""The toynic board: its memory map, the machine that wires CPU and devices, the ELF loader."""
