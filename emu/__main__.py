"""`python -m emu` is the `toynic` command (QEMU: the qemu-system-* binary)."""

from emu.cli import main

raise SystemExit(main())
