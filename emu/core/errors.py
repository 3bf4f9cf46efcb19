"""UserError — a mistake of the user's (bad option, unusable address); QEMU's Error/error_report.

Raised anywhere a command-line or monitor request cannot be carried out. The CLI prints
`toynic: <context>: <message>` on one line and exits 1; nothing else catches it.
`error_report` is for what goes wrong while the run goes on (a peer that went away).
"""

import sys


class UserError(Exception):
    """A one-line, user-facing error: str(self) is what the user sees."""


def error_report(message: str) -> None:
    """One line on stderr, at once (QEMU's error_report); the run goes on."""
    print(message, file=sys.stderr, flush=True)
