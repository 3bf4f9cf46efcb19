"""`toynic-trace`: sequence diagrams and numbers from trace files (QEMU:
scripts/simpletrace.py). parse: lines to events; journey: frames and arrows; svg, html:
the pictures; summary: the numbers; cli: the command."""
