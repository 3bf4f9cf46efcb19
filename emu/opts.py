"""QEMU-style option strings — QEMU's QemuOpts (util/qemu-option.c).

`socket,id=n0,listen=:1234` parses to group value `socket` (the implied first key) and
the pairs `id=n0`, `listen=:1234`. Rules, as QEMU's:

- elements are separated by `,`; a doubled `,,` is a literal comma inside a value;
- the first element may be a bare value for the group's implied key (`type` for
  -netdev/-object, `driver` for -device); a later bare `flag` means `flag=on`;
- a key may appear once; unknown keys are rejected by name (`check_keys`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emu.errors import UserError


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
            raise UserError(f"Parameter '{key}' expects a number, not '{value}'") from None


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


def parse_size(text: str) -> int:
    """QEMU size suffixes: `16M`, `512K`, `1G`; a bare number means MiB, as for `-m`."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    body = text.strip().upper().removesuffix("B")
    scale = 1 << 20
    if body and body[-1] in units:
        scale = units[body[-1]]
        body = body[:-1]
    try:
        number = float(body)
    except ValueError:
        raise UserError(f"invalid size '{text}'") from None
    if number <= 0:
        raise UserError(f"invalid size '{text}'")
    return int(number * scale)
