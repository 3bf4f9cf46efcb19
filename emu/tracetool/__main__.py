"""`python -m emu.tracetool`: the `toynic-trace` command."""

from emu.tracetool.cli import main

raise SystemExit(main())
