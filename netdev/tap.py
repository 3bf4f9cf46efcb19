"""`-netdev tap` — QEMU's net/tap.c and net/tap-linux.c: the host kernel as the peer.

`tap,id=ID[,ifname=NAME][,script=FILE|no][,downscript=FILE|no]` opens /dev/net/tun and
asks for a tap interface (`TUNSETIFF` with IFF_TAP|IFF_NO_PI): frames the guest sends
come out of interface NAME on the host, frames the host sends to NAME reach the guest.
Without `ifname` the kernel picks `tapN`. `script` (default /etc/qemu-ifup) runs as
`SCRIPT IFNAME` once the interface exists, `downscript` (default /etc/qemu-ifdown) at
exit; `no` or an empty value runs none. Those defaults are not installed by toynic, so
users pass `script=no,downscript=no` and configure the interface themselves (`ip`).

`tap,id=ID,fd=N` takes an already open tap descriptor instead (made by a parent process,
libvirt style): a tap opened with IFF_TAP|IFF_NO_PI, without vnet headers.

Reading and writing, with the queue contract, are `netdev.frame_fd.FrameFd`'s.
`info network` shows `ifname=NAME,script=FILE,downscript=FILE` or `fd=N`, as QEMU does.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
import subprocess
from collections.abc import Callable, Mapping

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import Opts, shown
from netdev.fd_param import take_fd
from netdev.frame_fd import FrameFd

TAP_KEYS = frozenset({"type", "id", "ifname", "script", "downscript", "fd"})
TUN_PATH = "/dev/net/tun"
DEFAULT_SCRIPT = "/etc/qemu-ifup"
DEFAULT_DOWNSCRIPT = "/etc/qemu-ifdown"
# <linux/if.h> and <linux/if_tun.h>
IFNAMSIZ = 16
TUNSETIFF = 0x400454CA
TUNGETIFF = 0x800454D2
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
_IFREQ = struct.Struct(f"{IFNAMSIZ}sH22x")
NEEDS_PRIVILEGE = "tap needs root or CAP_NET_ADMIN"
# How often a running network script is checked on (seconds), and what stops waiting for it.
SCRIPT_POLL = 0.05
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


class TapNetdev(FrameFd):
    """A tap interface of the host kernel: one read or write is one Ethernet frame."""

    def __init__(self, loop: MainLoop, name: str, fd: int, ifname: str, info: str,
                 downscript: str | None = None) -> None:
        super().__init__(loop, name, "tap", fd)
        self.ifname = ifname
        self.info_str = info
        self._downscript = downscript
        self._set_reading(True)

    def _trace_read(self, length: int) -> None:
        if self.trace.net_tap_read:
            self.trace.emit("net_tap_read", netdev=self.name, len=length)

    def _trace_write(self, length: int) -> None:
        if self.trace.net_tap_write:
            self.trace.emit("net_tap_write", netdev=self.name, len=length)

    def _trace_backpressure(self, direction: str, state: str) -> None:
        if self.trace.net_tap_backpressure:
            self.trace.emit("net_tap_backpressure", netdev=self.name, dir=direction,
                            state=state)

    def _trace_error(self, op: str, error: str) -> None:
        if self.trace.net_tap_error:
            self.trace.emit("net_tap_error", netdev=self.name, op=op, error=error)

    def cleanup(self) -> None:
        # As QEMU: the down script runs while the interface still exists.
        if self._downscript is not None and self.fd is not None:
            script, self._downscript = self._downscript, None
            try:
                run_script(script, self.ifname, self.fd, give_up=stop_requested)
            except UserError as err:
                self.report(f"toynic: netdev {self.name}: {err}")
        super().cleanup()


def create_tap_netdev(loop: MainLoop, name: str, opts: Opts,
                      taken_fds: Mapping[int, str] | None = None) -> TapNetdev:
    """The tap netdev `opts` asks for (UserError, one line, when it cannot be had)."""
    opts.check_keys(TAP_KEYS)
    fd_text = opts.get("fd")
    if fd_text is not None:
        if any(opts.get(key) is not None for key in ("ifname", "script", "downscript")):
            raise UserError("ifname=, script= and downscript= are invalid with fd=")
        fd = take_fd(fd_text, taken_fds or {}, "tap")
        return TapNetdev(loop, name, fd, tap_ifname(fd), f"fd={fd}")
    wanted = opts.get("ifname", "") or ""
    if wanted:
        check_ifname(wanted)
    script = opts.get("script", DEFAULT_SCRIPT)
    downscript = opts.get("downscript", DEFAULT_DOWNSCRIPT)
    assert script is not None and downscript is not None
    fd, ifname = open_tap(wanted)
    try:
        if _runs(script):
            run_script(script, ifname, fd)
    except BaseException:
        os.close(fd)
        raise
    info = f"ifname={ifname},script={script},downscript={downscript}"
    return TapNetdev(loop, name, fd, ifname, info,
                     downscript=downscript if _runs(downscript) else None)


def _runs(script: str) -> bool:
    return script not in ("", "no")


def check_ifname(ifname: str) -> None:
    """The kernel's dev_valid_name, with a sentence for each way to fail it."""
    size = len(ifname.encode(errors="surrogateescape"))
    if size >= IFNAMSIZ:
        raise UserError(f"ifname '{shown(ifname)}' is too long: an interface name has at "
                        f"most {IFNAMSIZ - 1} bytes")
    if ifname in (".", ".."):
        raise UserError(f"ifname '{ifname}' is not a valid interface name")
    bad = next((ch for ch in ifname if ch in "/:" or ch.isspace() or ch == "\0"), None)
    if bad is not None:
        raise UserError(f"ifname '{shown(ifname)}' is not a valid interface name: "
                        f"it contains {bad!r}")
    if "%" in ifname and (ifname.count("%") != 1 or "%d" not in ifname):
        raise UserError(f"ifname '{shown(ifname)}' is not a valid interface name: "
                        "'%' only as the kernel's '%d' template")


def open_tap(ifname: str) -> tuple[int, str]:
    """Open /dev/net/tun and attach it to tap `ifname` (the kernel picks `tapN` for "");
    returns the descriptor and the interface's name."""
    try:
        fd = os.open(TUN_PATH, os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        hint = {errno.ENOENT: "this kernel has no TUN/TAP device (modprobe tun)",
                errno.ENODEV: "this kernel has no TUN/TAP device (modprobe tun)",
                errno.EACCES: NEEDS_PRIVILEGE, errno.EPERM: NEEDS_PRIVILEGE}.get(err.errno or 0)
        raise UserError(f"could not open {TUN_PATH}: {err.strerror}"
                        + (f" ({hint})" if hint else "")) from None
    request = _IFREQ.pack((ifname or "tap%d").encode(errors="surrogateescape"),
                          IFF_TAP | IFF_NO_PI)
    try:
        answer = fcntl.ioctl(fd, TUNSETIFF, request)
    except OSError as err:
        os.close(fd)
        raise UserError(_setiff_error(ifname, err)) from None
    return fd, _IFREQ.unpack(answer)[0].rstrip(b"\0").decode(errors="replace")


def _setiff_error(ifname: str, err: OSError) -> str:
    where = f"{TUN_PATH} ({shown(ifname)})" if ifname else TUN_PATH
    hint = {
        errno.EPERM: NEEDS_PRIVILEGE,
        errno.EACCES: NEEDS_PRIVILEGE,
        errno.EBUSY: f"interface {shown(ifname)} is in use by another program",
        errno.EINVAL: f"interface {shown(ifname)} exists and is not a tap toynic can use",
    }.get(err.errno or 0)
    return f"could not configure {where}: {err.strerror}" + (f" ({hint})" if hint else "")


def tap_ifname(fd: int) -> str:
    """The interface of an inherited tap descriptor; UserError unless it is a tap
    toynic can drive (no packet information, no vnet headers)."""
    try:
        answer = fcntl.ioctl(fd, TUNGETIFF, bytes(_IFREQ.size))
    except OSError as err:
        raise UserError(f"fd={fd} is not a tap device: {err.strerror}") from None
    raw_name, flags = _IFREQ.unpack(answer)
    ifname = raw_name.rstrip(b"\0").decode(errors="replace")
    if not flags & IFF_TAP:
        raise UserError(f"fd={fd} is a tun device ({ifname}), not a tap: it carries IP "
                        "packets, not Ethernet frames")
    # IFF_NO_PI cannot be checked: TUNGETIFF reports IFF_NOFILTER in the same bit.
    if flags & IFF_VNET_HDR:
        raise UserError(f"fd={fd} (tap {ifname}) was opened with vnet headers; toynic "
                        "takes a tap opened with IFF_TAP|IFF_NO_PI only")
    return ifname


def run_script(script: str, ifname: str, fd: int,
               give_up: Callable[[], bool] = lambda: False) -> None:
    """QEMU's launch_script: run `script IFNAME` with the tap descriptor open, wait for it;
    UserError unless it exits with status 0. `give_up()` is asked while it runs: when it
    says so (a stop signal came), the script is killed and that is the error."""
    try:
        # stdin/stdout/stderr are inherited, as QEMU's; every other descriptor is closed.
        # A name without a slash is a path, as for QEMU's execv: no PATH search.
        child = subprocess.Popen([script, ifname], pass_fds=(fd,),
                                 executable=script if "/" in script else f"./{script}")
    except OSError as err:
        raise UserError(f"could not launch network script {shown(script)}: "
                        f"{err.strerror} (script=no / downscript=no run none)") from None
    try:
        while True:
            try:
                returncode = child.wait(SCRIPT_POLL)
                break
            except subprocess.TimeoutExpired:
                if give_up():
                    raise UserError(f"network script {shown(script)} killed: toynic was "
                                    "told to stop while it ran") from None
    finally:
        # A script left behind (given up on, or Ctrl-C while the up script runs) is killed.
        if child.returncode is None:
            child.kill()
            child.wait()
    if returncode != 0:
        raise UserError(f"network script {shown(script)} failed with status "
                        f"{_wait_status(returncode)}")


def stop_requested() -> bool:
    """A SIGINT or SIGTERM is pending: toynic's teardown blocks them, so one that came
    while a down script runs waits here, and the script is not waited for any longer."""
    return bool(signal.sigpending() & STOP_SIGNALS)


def _wait_status(returncode: int) -> int:
    """The raw wait status QEMU prints (exit code << 8, or the signal number)."""
    return -returncode if returncode < 0 else returncode << 8
