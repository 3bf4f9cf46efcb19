"""`fd=N` — a descriptor handed to toynic by number, checked before a netdev uses it
(QEMU's monitor_fd_param and qemu_parse_fd, as net/socket.c and net/tap.c call them).

The number is C's int (decimal digits only, at most INT_MAX); a descriptor the process
already uses (the event loop's wakeup pipe, another netdev's socket) is refused, since
taking it over would steal its events; a number that is not open is refused by fstat.
What the descriptor must be (a socket, a tap) is for the netdev to check next.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from emu.core.errors import UserError
from emu.core.opts import shown

FD_MAX = 0x7FFFFFFF
_FD_NUMBER = re.compile(r"[0-9]{1,10}")


def take_fd(text: str, taken_fds: Mapping[int, str], what: str, context: str = "") -> int:
    """The open descriptor `fd=text` names; UserError (one line) if `text` is not a
    descriptor number, names one of `taken_fds` (not a `what` handed to toynic) or is not
    open (`context` goes before that message)."""
    if _FD_NUMBER.fullmatch(text) is None or int(text) > FD_MAX:
        raise UserError(f"Invalid file descriptor number '{shown(text)}'")
    fd = int(text)
    owner = taken_fds.get(fd)
    if owner is not None:
        raise UserError(f"fd={fd} is {owner}, not a {what} handed to toynic")
    try:
        os.fstat(fd)
    except OSError as err:
        raise UserError(f"{context}Can't use file descriptor {text}: {err.strerror}") from None
    return fd
