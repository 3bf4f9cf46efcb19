"""The foundation every other layer builds on: errors, options, the main loop, tracing,
IRQ lines, the virtual clock and the bus. Imports nothing outside `emu.core`."""
