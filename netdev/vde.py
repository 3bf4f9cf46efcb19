"""`-netdev vde` — QEMU's net/vde.c, with libvdeplug's client side (vde_open) in Python.

`vde,id=ID[,sock=DIR][,port=N][,group=GROUP][,mode=OCTAL]` plugs the machine into a
running `vde_switch` (Debian's vde2) whose control directory is DIR. The protocol, as
libvdeplug speaks it (and vde_switch's datasock module answers it):

1. a stream connection to `DIR/ctl` (the control connection, kept open: the switch
   frees the port when it closes);
2. our own unix datagram socket bound at `DIR/.PID-NNNNN` (else in /var/run, /var/tmp,
   /tmp), permissions `mode` (default 0700), group `group`;
3. one request on the control connection: magic 0xfeedface, version 3, the request
   type (0 = new port) plus `port << 8` (0: the switch picks a port), a `sockaddr_un`
   naming our datagram socket, then a description (`toynic user=NAME PID=N`), all in
   host byte order, packed;
4. the switch answers with the `sockaddr_un` of its datagram socket for our port, or
   closes the connection when it refuses (port in use, no free port);
5. the datagram socket is connected to that address: from then on every frame is one
   datagram each way (reading and writing are `netdev.frame_fd.FrameFd`'s).

Without `sock`, the switch is looked for where libvdeplug looks: ~/.vde2/default.switch,
/var/run/vde.ctl, /tmp/vde.ctl. `info network` shows `sock=PATH,fd=N` as QEMU does.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import socket
import stat
import struct
from pathlib import Path

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import Opts, shown
from netdev.frame_fd import FrameFd

VDE_KEYS = frozenset({"type", "id", "sock", "port", "group", "mode"})
SWITCH_MAGIC = 0xFEEDFACE
REQUEST_VERSION = 3
SUN_PATH_SIZE = 108
# struct sockaddr_un: sa_family_t, then the path
SOCKADDR_UN = struct.Struct(f"=H{SUN_PATH_SIZE}s")
REQUEST_HEAD = struct.Struct("=IIi")
MAX_DESCRIPTION = 128
DEFAULT_MODE = 0o700
GID_NONE = 0xFFFFFFFF
PORT_MAX = 0x7FFFFF  # the port travels in the upper 24 bits of the request type
DATA_DIRS = ("/var/run", "/var/tmp", "/tmp")
DEFAULT_SWITCHES = ("/var/run/vde.ctl", "/tmp/vde.ctl")
# How long the switch may take to answer the request before toynic gives up on it.
ANSWER_TIMEOUT = 5.0


class VdeNetdev(FrameFd):
    """One port of a vde_switch: frames are unix datagrams on a connected socket."""

    def __init__(self, loop: MainLoop, name: str, control: socket.socket,
                 data: socket.socket, data_path: str, sock_text: str) -> None:
        super().__init__(loop, name, "vde", data.detach())
        self._control: socket.socket | None = control
        self._data_path = data_path
        self.info_str = f"sock={sock_text},fd={self.fd}"
        control.setblocking(False)
        # The switch never writes on the control connection after its answer: readable
        # means it closed, i.e. the switch went away.
        loop.set_read_handler(control.fileno(), self._on_control)
        self._set_reading(True)

    def _trace_read(self, length: int) -> None:
        if self.trace.net_vde_read:
            self.trace.emit("net_vde_read", netdev=self.name, len=length)

    def _trace_write(self, length: int) -> None:
        if self.trace.net_vde_write:
            self.trace.emit("net_vde_write", netdev=self.name, len=length)

    def _trace_backpressure(self, direction: str, state: str) -> None:
        if self.trace.net_vde_backpressure:
            self.trace.emit("net_vde_backpressure", netdev=self.name, dir=direction,
                            state=state)

    def _trace_error(self, op: str, error: str) -> None:
        if self.trace.net_vde_error:
            self.trace.emit("net_vde_error", netdev=self.name, op=op, error=error)

    def owned_fds(self) -> list[int]:
        control = [] if self._control is None else [self._control.fileno()]
        return super().owned_fds() + control

    def _on_control(self) -> None:
        control = self._control
        if control is None:
            return
        try:
            data = control.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            return
        self._loop.remove_fd(control.fileno())
        self._trace_error("control", "closed")
        self.report(f"toynic: netdev {self.name}: the VDE switch closed the control "
                    "connection; frames to it are dropped")

    def cleanup(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            self._loop.remove_fd(control.fileno())
            control.close()
        super().cleanup()
        with contextlib.suppress(OSError):
            os.unlink(self._data_path)


def create_vde_netdev(loop: MainLoop, name: str, opts: Opts) -> VdeNetdev:
    """The vde netdev `opts` asks for (UserError, one line, when it cannot be had)."""
    opts.check_keys(VDE_KEYS)
    given = opts.get("sock")
    port = _port(opts.get("port"))
    mode = _mode(opts.get("mode"))
    group = _group(opts.get("group"))
    switch_dir = _switch_dir(given)
    control = _connect_control(switch_dir, given)
    try:
        data, data_path = _bind_data_socket(switch_dir, mode, group)
        try:
            _connect_data(data, switch_dir, _request_port(control, switch_dir, data_path, port))
        except BaseException:
            data.close()
            with contextlib.suppress(OSError):
                os.unlink(data_path)
            raise
    except BaseException:
        control.close()
        raise
    return VdeNetdev(loop, name, control, data, data_path,
                     given if given is not None else switch_dir)


def _connect_data(data: socket.socket, switch_dir: str, path: str) -> None:
    """Connect our datagram socket to the one the switch named; the switch may be any
    program listening on DIR/ctl, so whatever it named, a failure is one line."""
    try:
        data.connect(path)
    except OSError as err:
        raise UserError(f"VDE switch {shown(switch_dir)}: could not connect to the data "
                        f"socket it named ({shown(path)}): {err.strerror}") from None


def _c_number(key: str, text: str) -> int:
    """A number as QEMU's option parser reads it (strtoull base 0: 0x hex, 0 octal)."""
    body = text.lower()
    try:
        if body.startswith("0x"):
            return int(body[2:], 16)
        if body.startswith("0") and len(body) > 1:
            return int(body[1:], 8)
        if body.isdigit():
            return int(body, 10)
    except ValueError:
        pass
    raise UserError(f"Parameter '{key}' expects a number, not '{shown(text)}'")


def _port(text: str | None) -> int:
    if text is None:
        return 0
    port = _c_number("port", text)
    if port > PORT_MAX:
        raise UserError(f"port={shown(text)} is out of range: a VDE port is 0 (any) to "
                        f"{PORT_MAX}")
    return port


def _mode(text: str | None) -> int:
    if text is None:
        return DEFAULT_MODE
    mode = _c_number("mode", text)
    if mode > 0o777:
        raise UserError(f"mode={shown(text)} is not a permission mode (0 to 0777)")
    return mode


def _group(text: str | None) -> int | None:
    """libvdeplug's rule: a group name, else a number."""
    if text is None:
        return None
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        pass
    # (gid_t)-1 means "leave the group as it is" to chown; larger ones do not fit.
    if text.isascii() and text.isdigit() and int(text) < GID_NONE:
        return int(text)
    raise UserError(f"group '{shown(text)}' does not exist")


def _switch_dir(given: str | None) -> str:
    if given:
        return os.path.realpath(given)
    home = os.environ.get("HOME")
    candidates = [os.path.join(home, ".vde2", "default.switch")] if home else []
    candidates += DEFAULT_SWITCHES
    for candidate in candidates:
        if os.path.exists(os.path.join(candidate, "ctl")):
            return os.path.realpath(candidate)
    raise UserError("no VDE switch found (none at " + ", ".join(candidates)
                    + "); give its directory with sock=")


def _connect_control(switch_dir: str, given: str | None) -> socket.socket:
    path = os.path.join(switch_dir, "ctl")
    shown_sock = shown(given if given is not None else switch_dir)
    if len(path.encode()) >= SUN_PATH_SIZE:
        raise UserError(f"sock={shown_sock}: the path {shown(path)} is too long for a unix "
                        f"socket ({SUN_PATH_SIZE - 1} bytes at most)")
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        control.connect(path)
    except OSError as err:
        control.close()
        hint = {
            errno.ENOENT: "is vde_switch running with -s on that directory?",
            errno.ENOTDIR: "sock= names the switch's directory, not a file",
            errno.ECONNREFUSED: ("the switch that made it is not running" if _is_socket(path)
                                 else f"{shown(path)} is not a socket: not a switch's "
                                 "directory"),
            errno.EACCES: "not allowed to use this switch",
        }.get(err.errno or 0)
        raise UserError(f"could not connect to VDE switch {shown_sock}: {err.strerror}"
                        + (f" ({hint})" if hint else "")) from None
    return control


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _bind_data_socket(switch_dir: str, mode: int, group: int | None) -> tuple[socket.socket, str]:
    """Our datagram socket, bound in the switch's directory (libvdeplug's first choice) or
    else in one of DATA_DIRS; chmod `mode`, chgrp `group`."""
    data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    pid = os.getpid()
    places = [(switch_dir, ".")] + [(d, "vde.") for d in DATA_DIRS]
    last: OSError | None = None
    for directory, prefix in places:
        # A bounded hunt for a free name: names taken by earlier runs are skipped.
        for number in range(1000):
            path = os.path.join(directory, f"{prefix}{pid:05d}-{number:05d}")
            if len(path.encode()) >= SUN_PATH_SIZE:
                break
            try:
                data.bind(path)
            except OSError as err:
                last = err
                if err.errno == errno.EADDRINUSE:
                    continue
                break
            try:
                if group is not None:
                    os.chown(path, -1, group)
                os.chmod(path, mode)
            except OSError as err:
                data.close()
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise UserError(f"could not set mode/group of {shown(path)}: "
                                f"{err.strerror}") from None
            return data, path
    data.close()
    reason = last.strerror if last is not None else "no usable directory"
    raise UserError(f"could not bind a VDE data socket in {shown(switch_dir)} or "
                    f"{', '.join(DATA_DIRS)}: {reason}")


def _description() -> bytes:
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = "??"
    return f"toynic user={user} PID={os.getpid()}".encode()[:MAX_DESCRIPTION - 1]


def _request_port(control: socket.socket, switch_dir: str, data_path: str, port: int) -> str:
    """Send the port request; the path of the switch's datagram socket for our port."""
    request = (REQUEST_HEAD.pack(SWITCH_MAGIC, REQUEST_VERSION, port << 8)
               + SOCKADDR_UN.pack(socket.AF_UNIX, data_path.encode())
               + _description())
    where = shown(switch_dir)
    control.settimeout(ANSWER_TIMEOUT)
    answer = b""
    try:
        control.sendall(request)
        while len(answer) < SOCKADDR_UN.size:
            chunk = control.recv(SOCKADDR_UN.size - len(answer))
            if not chunk:
                break
            answer += chunk
    except TimeoutError:
        # vde_switch neither answers nor closes when it cannot give the port asked for.
        why = f" (is port {port} beyond its ports?)" if port else ""
        raise UserError(f"VDE switch {where} gave no port within {ANSWER_TIMEOUT:g} s"
                        + why) from None
    except OSError as err:
        raise UserError(f"VDE switch {where}: {err.strerror}") from None
    if len(answer) < SOCKADDR_UN.size:
        which = f"port {port}" if port else "a port"
        raise UserError(f"VDE switch {where} refused {which} (in use, out of range, or "
                        "no free port)")
    family, raw = SOCKADDR_UN.unpack(answer)
    path = raw.split(b"\0", 1)[0].decode(errors="surrogateescape")
    if family != socket.AF_UNIX or not path or not Path(path).is_absolute():
        raise UserError(f"VDE switch {where} answered with a malformed address")
    return path
