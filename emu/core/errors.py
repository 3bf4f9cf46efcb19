"""UserError — a mistake of the user's (bad option, unusable address); QEMU's Error/error_report.

Raised anywhere a command-line or monitor request cannot be carried out. The CLI prints
`toynic: <context>: <message>` on one line and exits 1; nothing else catches it.
"""


class UserError(Exception):
    """A one-line, user-facing error: str(self) is what the user sees."""
