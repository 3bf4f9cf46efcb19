"""QEMU-style option strings — QEMU's QemuOpts (util/qemu-option.c).

`socket,id=n0,listen=:1234` parses to group value `socket` (the implied first key) and
the pairs `id=n0`, `listen=:1234`. Rules, as QEMU's:

- elements are separated by `,`; a doubled `,,` is a literal comma inside a value;
- the first element may be a bare value for the group's implied key (`type` for
  -netdev/-object, `driver` for -device); a later bare `flag` means `flag=on`;
- a key may appear once; unknown keys are rejected by name (`check_keys`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from emu.core.errors import UserError


@dataclass
class Opts:
    """One parsed option string: what the user typed plus its ordered key/value pairs."""

    text: str
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def require(self, key: str, what: str | None = None) -> str:
        value = self.values.get(key)
        if value is None:
            raise UserError(f"Parameter '{key}' is missing" + (f" ({what})" if what else ""))
        return value

    def check_keys(self, allowed: set[str] | frozenset[str]) -> None:
        """Reject the first key that is not in `allowed`, naming it."""
        for key in self.values:
            if key not in allowed:
                raise UserError(f"Parameter '{key}' is unexpected")

    def get_bool(self, key: str, default: bool = False) -> bool:
        value = self.values.get(key)
        if value is None:
            return default
        if value in ("on", "yes", "true", "y"):
            return True
        if value in ("off", "no", "false", "n"):
            return False
        raise UserError(f"Parameter '{key}' expects 'on' or 'off'")

    def get_int(self, key: str, default: int | None = None) -> int | None:
        value = self.values.get(key)
        if value is None:
            return default
        try:
            return int(value, 0)
        except ValueError:
            raise UserError(f"Parameter '{key}' expects a number, not '{shown(value)}'") from None


def split_elements(text: str) -> list[str]:
    """Split at single commas; `,,` stands for a literal comma."""
    elements: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ",":
            if text.startswith(",,", i):
                current.append(",")
                i += 2
                continue
            elements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    elements.append("".join(current))
    return elements


def parse_opts(text: str, implied_key: str | None = None) -> Opts:
    """Parse `text`; a leading bare element becomes the value of `implied_key`."""
    opts = Opts(text=text)
    for position, element in enumerate(split_elements(text)):
        if element == "":
            if position == 0 and implied_key is not None:
                raise UserError(f"Parameter '{implied_key}' is missing")
            continue
        key, sep, value = element.partition("=")
        if not sep:
            if position == 0 and implied_key is not None:
                key, value = implied_key, element
            else:
                value = "on"
        if key in opts.values:
            raise UserError(f"Parameter '{key}' is given twice")
        opts.values[key] = value
    return opts


_SIZE = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)([bBkKmMgGtTpPeE]?)")
# Suffix letters in order of their power of 1024 (B = 1024^0).
_SIZE_UNITS = "bkmgtpe"
SIZE_LIMIT = 1 << 64
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


def one_line(text: str) -> str:
    """`text` with control characters (newlines too) and undecodable bytes escaped."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def shown(text: str, limit: int = 80) -> str:
    """User input fit for a one-line message: `one_line`, and cut short (saying how long
    it was) beyond `limit` characters."""
    safe = one_line(text)
    if len(safe) <= limit:
        return safe
    return f"{safe[:limit // 2]}...({len(text)} characters)"


def parse_size(text: str) -> int:
    """A size in bytes, by QEMU's rules for `-m`: a number (decimal with an optional
    fraction, or hex) and at most one suffix letter B, K, M, G, T, P or E (case ignored;
    B means bytes); no suffix means MiB. A fraction of a byte is refused, any other
    result is truncated to whole bytes. Exact arithmetic: no float rounding, no inf/nan."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise UserError(f"invalid size '{shown(text)}' (a number with an optional suffix "
                        "B, K, M, G)")
    number, suffix = match.groups()
    shift = 10 * _SIZE_UNITS.index(suffix.lower() or "m")
    if "." in number and shift == 0:
        raise UserError(f"invalid size '{shown(text)}': a fraction of a byte")
    # Hex digits convert without Python's limit on decimal digits; a decimal string
    # becomes a Decimal, which has none either.
    value = int(number, 16) if number[:2].lower() == "0x" else Decimal(number)
    if value >= SIZE_LIMIT >> shift:
        raise UserError(f"size '{shown(text)}' is too large (the limit is 2^64 bytes)")
    return int(value * (1 << shift))


def check_id(value: str, what: str = "id") -> str:
    """QEMU's identifier rule (id_wellformed): an ASCII letter, then letters, digits,
    '-', '.' or '_'. Returns `value` when it is one."""
    if _ID.fullmatch(value) is None:
        raise UserError(f"Parameter '{what}' expects an identifier (a letter, then letters, "
                        f"digits, '-', '.' or '_'), not '{shown(value)}'")
    return value
