"""QMP, the QEMU Machine Protocol — QEMU's monitor/qmp.c (the session: greeting,
capabilities negotiation, dispatch, error objects), qapi/qmp-dispatch.c and the commands
toynic has (qapi/control.json, qapi/misc.json, qapi/net.json, qapi/run-state.json).

One JSON object per line, answered by one line: `{"return": ...}` or `{"error": {"class":
..., "desc": ...}}`, with the request's `id` echoed. A session starts in capabilities
negotiation (only `qmp_capabilities` runs, as in QEMU) and then takes `query-status`,
`query-version`, `query-name`, `set_link`, `netdev_add`, `netdev_del`,
`human-monitor-command`, `quit`, and with a machine `stop`/`cont` (qapi/misc.json).
Events (NETDEV_STREAM_CONNECTED, _DISCONNECTED, SHUTDOWN, and STOP/RESUME whenever the
machine pauses or resumes, whichever monitor asked) go to every session past negotiation,
stamped like QEMU's.
Unlike QEMU, whose JSON parser reads a stream, a line is a message: a malformed line gets
a GenericError and the next line starts afresh (docs/quirks.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from emu.board.machine import Machine
from emu.core.errors import UserError
from emu.core.opts import Opts
from emu.monitor.hmp import Monitor
from netdev.net import Net

# toynic speaks QEMU 7.2's protocol; `package` says who answers.
QEMU_VERSION = {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "toynic"}


class QmpError(Exception):
    """A command's failure: an error class (GenericError, CommandNotFound, ...) and text."""

    def __init__(self, desc: str, error_class: str = "GenericError") -> None:
        super().__init__(desc)
        self.error_class = error_class
        self.desc = desc


Handler = Callable[[dict[str, Any]], Any]


class Qmp:
    """The QMP commands over one process's Net (and Machine, if any); `session` makes one
    client's QmpSession. Net events reach every live session."""

    def __init__(self, net: Net, hmp: Monitor, machine: Machine | None = None,
                 on_quit: Callable[[], None] | None = None) -> None:
        self.net = net
        self.hmp = hmp
        self.machine = machine
        self.on_quit = on_quit
        self.sessions: list[QmpSession] = []
        # Arguments each command takes: name -> (required, optional).
        self._commands: dict[str, tuple[Handler, frozenset[str], frozenset[str]]] = {
            "query-status": (self._query_status, frozenset(), frozenset()),
            "query-version": (lambda _a: QEMU_VERSION, frozenset(), frozenset()),
            "query-name": (lambda _a: {}, frozenset(), frozenset()),
            "set_link": (self._set_link, frozenset({"name", "up"}), frozenset()),
            "netdev_add": (self._netdev_add, frozenset({"type", "id"}), frozenset()),
            "netdev_del": (self._netdev_del, frozenset({"id"}), frozenset()),
            "human-monitor-command": (self._hmp, frozenset({"command-line"}),
                                      frozenset({"cpu-index"})),
            "quit": (self._quit, frozenset(), frozenset()),
        }
        net.event_listeners.append(self.emit)
        if machine is not None:
            self._commands["stop"] = (self._stop, frozenset(), frozenset())
            self._commands["cont"] = (self._cont, frozenset(), frozenset())
            machine.run_state_listeners.append(
                lambda running: self.emit("RESUME" if running else "STOP"))

    def session(self, push: Callable[[str], None]) -> QmpSession:
        session = QmpSession(self, push)
        self.sessions.append(session)
        return session

    def emit(self, name: str, data: dict[str, Any] | None = None) -> None:
        """Send event `name` to every session in command mode."""
        now = time.time_ns() // 1000
        message: dict[str, Any] = {"timestamp": {"seconds": now // 10**6,
                                                 "microseconds": now % 10**6},
                                   "event": name}
        if data is not None:
            message["data"] = data
        line = json.dumps(message) + "\n"
        for session in list(self.sessions):
            if session.negotiated:
                session.push(line)

    def run(self, name: str, arguments: dict[str, Any]) -> Any:
        entry = self._commands.get(name)
        if entry is None:
            raise QmpError(f"The command {name} has not been found", "CommandNotFound")
        handler, required, optional = entry
        if name != "netdev_add":
            for key in arguments:
                if key not in required | optional:
                    raise QmpError(f"Parameter '{key}' is unexpected")
        for key in sorted(required):
            if key not in arguments:
                raise QmpError(f"Parameter '{key}' is missing")
        return handler(arguments)

    # -- commands ------------------------------------------------------------------------

    def _query_status(self, _args: dict[str, Any]) -> dict[str, Any]:
        machine = self.machine
        if machine is not None and machine.exit_code is not None:
            return {"status": "shutdown", "singlestep": False, "running": False}
        if machine is not None and machine.paused:
            return {"status": "paused", "singlestep": False, "running": False}
        return {"status": "running", "singlestep": False, "running": True}

    def _stop(self, _args: dict[str, Any]) -> dict[str, Any]:
        assert self.machine is not None
        try:
            self.machine.pause()
        except UserError as err:
            raise QmpError(str(err)) from None
        return {}

    def _cont(self, _args: dict[str, Any]) -> dict[str, Any]:
        assert self.machine is not None
        if self.machine.exit_code is not None:
            raise QmpError("Resetting the Virtual Machine is required")
        self.machine.resume()
        return {}

    def _set_link(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _typed(args, "name", str, "string")
        up = _typed(args, "up", bool, "boolean")
        try:
            self.net.set_link(name, up)
        except UserError as err:
            raise QmpError(str(err), "DeviceNotFound") from None
        return {}

    def _netdev_add(self, args: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, str] = {}
        _flatten(args, "", values)
        try:
            self.net.add_netdev(Opts(text=",".join(f"{k}={v}" for k, v in values.items()),
                                     values=values))
        except UserError as err:
            raise QmpError(str(err)) from None
        return {}

    def _netdev_del(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            self.net.remove_netdev(_typed(args, "id", str, "string"))
        except UserError as err:
            raise QmpError(str(err), "DeviceNotFound") from None
        return {}

    def _hmp(self, args: dict[str, Any]) -> str:
        line = _typed(args, "command-line", str, "string")
        # As QEMU's monitor_printf, which ends every output line with CRLF here too.
        return self.hmp.execute(line).replace("\n", "\r\n")

    def _quit(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {}

    def quit(self) -> None:
        """After `quit` answered: the SHUTDOWN event, then the process ends."""
        self.emit("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})
        if self.on_quit is not None:
            self.on_quit()


class QmpSession:
    """One client: negotiation state and the line → reply step (a chardev LineService)."""

    def __init__(self, qmp: Qmp, push: Callable[[str], None]) -> None:
        self.qmp = qmp
        self.push = push
        self.negotiated = False
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def greeting(self) -> str:
        return json.dumps({"QMP": {"version": QEMU_VERSION, "capabilities": []}}) + "\n"

    def message_end(self, data: bytes | bytearray) -> int:
        """A message ends where its outermost object or array closes (clients such as
        qemu.qmp send no newline after it) or at a newline, whichever comes first."""
        depth = 0
        in_string = escaped = False
        for index, byte in enumerate(data):
            if in_string:
                if escaped:
                    escaped = False
                elif byte == 0x5C:  # backslash
                    escaped = True
                elif byte == 0x22:  # quote
                    in_string = False
            elif byte == 0x0A:
                return index + 1
            elif byte == 0x22:
                in_string = True
            elif byte in b"{[":
                depth += 1
            elif byte in b"}]":
                depth -= 1
                if depth <= 0:
                    return index + 1
        return -1

    def overlong(self, limit: int) -> str:
        return _error_line(QmpError(f"JSON parse error, input longer than {limit} bytes"), None)

    def closed(self) -> None:
        if self in self.qmp.sessions:
            self.qmp.sessions.remove(self)

    def answer(self, line: str) -> str:
        if not line.strip():
            return ""
        try:
            request = json.loads(line)
        except (ValueError, RecursionError) as err:
            reason = err.msg if isinstance(err, json.JSONDecodeError) else "nesting too deep"
            return _error_line(QmpError(f"JSON parse error, {reason}"), None)
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            result = self._dispatch(request)
        except QmpError as err:
            return _error_line(err, request_id)
        reply: dict[str, Any] = {"return": result}
        if request_id is not None:
            reply["id"] = request_id
        text = json.dumps(reply) + "\n"
        if request.get("execute") == "quit":
            self.push(text)
            self._done = True
            self.qmp.quit()
            return ""
        return text

    def _dispatch(self, request: Any) -> Any:
        if not isinstance(request, dict):
            raise QmpError("QMP input must be a JSON object")
        for key in request:
            if key not in ("execute", "arguments", "id", "exec-oob"):
                raise QmpError(f"QMP input member '{key}' is unexpected")
        if "exec-oob" in request:
            raise QmpError("QMP input member 'exec-oob' is unexpected: out-of-band "
                           "execution was not negotiated")
        name = request.get("execute")
        if name is None:
            raise QmpError("QMP input lacks member 'execute'")
        if not isinstance(name, str):
            raise QmpError("QMP input member 'execute' must be a string")
        arguments = request.get("arguments", {})
        if not isinstance(arguments, dict):
            raise QmpError("QMP input member 'arguments' must be an object")
        if name == "qmp_capabilities":
            if self.negotiated:
                raise QmpError("Capabilities negotiation is already complete, command ignored",
                               "CommandNotFound")
            for key, value in arguments.items():
                if key != "enable":
                    raise QmpError(f"Parameter '{key}' is unexpected")
                if value:
                    raise QmpError(f"Parameter 'enable' does not accept value {value!r}")
            self.negotiated = True
            return {}
        if not self.negotiated:
            raise QmpError("Expecting capabilities negotiation with 'qmp_capabilities'",
                           "CommandNotFound")
        return self.qmp.run(name, arguments)


def _typed(args: dict[str, Any], key: str, kind: type, name: str) -> Any:
    value = args[key]
    if type(value) is not kind:
        raise QmpError(f"Invalid parameter type for '{key}', expected: {name}")
    return value


def _flatten(value: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    """netdev_add's arguments as -netdev keys: nested objects become dotted keys
    (addr.type=inet), booleans on/off, numbers decimal."""
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            _flatten(item, name + ".", out)
        elif isinstance(item, bool):
            out[name] = "on" if item else "off"
        elif isinstance(item, int | str):
            out[name] = str(item)
        else:
            raise QmpError(f"Invalid parameter type for '{name}', expected: scalar")


def _error_line(err: QmpError, request_id: Any) -> str:
    reply: dict[str, Any] = {"error": {"class": err.error_class, "desc": err.desc}}
    if request_id is not None:
        reply["id"] = request_id
    return json.dumps(reply) + "\n"
