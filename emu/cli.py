"""The `toynic` command line — QEMU's vl.c option handling, with QEMU's option names.

`toynic [-netdev ...]... [-object filter-dump|filter-netem,...]...
[-kernel ELF [-append TEXT] [-m SIZE]
[-icount shift=N[,rr=record|replay,rrfile=FILE]] [-device ne2k_isa,...]...]`

With a kernel, the machine runs until the guest powers off (exit status = the guest's
code). With only netdevs and hubs, toynic is a frame relay until SIGINT/SIGTERM. Every
user error is one line on stderr and exit status 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from emu.board.layout import RAM_DEFAULT_SIZE
from emu.board.machine import RAM_MAX_SIZE, Machine
from emu.board.replay import Recorder, Replayer, run_header
from emu.core.errors import UserError
from emu.core.fdwriter import FdWriter
from emu.core.loop import MainLoop
from emu.core.opts import Opts, one_line, parse_opts, parse_size, shown
from emu.core.trace import Trace, configure_trace
from emu.core.trace import help_text as trace_help_text
from emu.monitor.chardev import ChardevSpec, MonitorServer, parse_chardev
from emu.monitor.hmp import Monitor
from emu.monitor.qmp import Qmp
from netdev.net import HOST_NETDEVS, Net

# The signals that end a run (QEMU: "terminating on signal").
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

USAGE = """\
usage: toynic [options]
  -netdev socket,id=ID,listen=[HOST]:PORT | connect=HOST:PORT | fd=N
                      | mcast=MADDR:PORT[,localaddr=IP] | udp=HOST:PORT,localaddr=HOST:PORT
  -netdev stream,id=ID[,server=on|off],addr.type=inet,addr.host=HOST,addr.port=PORT
                      [,addr.ipv4=on|off][,addr.ipv6=on|off][,reconnect-ms=N]
                      | addr.type=unix,addr.path=PATH[,addr.abstract=on] | addr.type=fd,addr.str=N
  -netdev dgram,id=ID,local.type=inet|unix|fd,...[,remote.type=inet|unix,...]
  -netdev hubport,id=ID,hubid=N[,netdev=ID]
  -netdev tap,id=ID[,ifname=NAME][,script=FILE|no][,downscript=FILE|no] | fd=N
  -netdev vde,id=ID[,sock=DIR][,port=N][,group=GROUP][,mode=OCTAL]
  -object filter-dump,id=ID,netdev=ID,file=PATH[,maxlen=N]
  -object filter-netem,id=ID,netdev=ID[,queue=all|rx|tx][,loss=P%][,duplicate=P%]
                      [,reorder=P%][,delay=T][,jitter=T][,corrupt=P%][,rate=BITS]
                      [,limit=N][,seed=N]  a lossy, slow link (T: 10ms, 500us, 1s)
  -kernel ELF         guest program to run (RISC-V RV32IM ELF)
  -append TEXT        command line handed to the guest's main(argc, argv)
  -m SIZE             guest RAM (default 16M): a number and one of B, K, M, G
                      (no suffix: MiB), rounded up to 8K, at most 2G
  -icount shift=N[,sleep=on|off][,rr=record|replay,rrfile=FILE]
                      virtual time: 2^N ns per instruction (default shift=0);
                      rr=record writes the run's inputs to FILE, rr=replay runs
                      it again from FILE without the peer (see -object filter-replay)
  -object filter-replay,id=ID,netdev=ID
                      record/replay the frames netdev ID passes to the NIC
  -device ne2k_isa,netdev=ID[,iobase=0x300][,irq=9][,mac=52:54:00:12:34:56]
                      [,lossless=on|off][,tx-timing=immediate|wire]
  -monitor stdio | unix:PATH,server,nowait | tcp:HOST:PORT,server,nowait
                      the human monitor (info network, set_link, info registers, ...)
  -qmp stdio | unix:PATH,server,nowait | tcp:HOST:PORT,server,nowait
                      the QEMU Machine Protocol (JSON; query-status, set_link,
                      netdev_add, netdev_del, human-monitor-command, stop, cont,
                      quit; events)
  -trace [enable=]PATTERN[,events=FILE][,file=FILE]
                      trace events matching PATTERN (* ? globs, -PATTERN disables);
                      events=FILE: one pattern per line; -trace help lists the events
  -D FILE             write trace output to FILE instead of stderr
  -nographic          accepted for QEMU habits (the console is always stdout)
  -h, -help           this text
"""

DEFAULT_RAM = RAM_DEFAULT_SIZE
# QEMU rounds the RAM size up to a multiple of 8 KiB (vl.c set_memory_options).
RAM_ALIGN = 8 << 10
# Options that only configure the machine: refused without -kernel (QEMU refuses
# -append without -kernel; toynic without a kernel runs no machine at all).
MACHINE_ONLY = ("-append", "-m", "-icount")


@dataclass
class Config:
    """Everything the command line asked for, before anything is built."""

    netdevs: list[Opts] = field(default_factory=list)
    devices: list[Opts] = field(default_factory=list)
    objects: list[Opts] = field(default_factory=list)
    kernel: str | None = None
    append: str = ""
    ram_size: int = DEFAULT_RAM
    icount: Opts = field(default_factory=lambda: parse_opts("shift=0", "shift"))
    monitor: ChardevSpec | None = None
    qmp: ChardevSpec | None = None
    trace: list[Opts] = field(default_factory=list)
    logfile: str | None = None


@contextlib.contextmanager
def option_context(option: str, text: str) -> Iterator[None]:
    """Prefix a UserError raised while handling one option with that option, as QEMU does."""
    try:
        yield
    except UserError as err:
        raise UserError(one_line(f"{option} {shown(text)}: {err}")) from None


def parse_args(argv: Sequence[str]) -> Config | None:
    """Turn argv into a Config; None means help was printed."""
    config = Config()
    args = list(argv)
    given: set[str] = set()
    i = 0

    def value(option: str) -> str:
        nonlocal i
        i += 1
        if i >= len(args):
            raise UserError(f"{option}: requires an argument")
        return args[i]

    while i < len(args):
        option = args[i]
        if option.startswith("--"):
            option = option[1:]
        if option in ("-h", "-help"):
            print(USAGE, end="")
            return None
        given.add(option)
        if option == "-netdev":
            text = value(option)
            with option_context(option, text):
                config.netdevs.append(parse_opts(text, "type"))
        elif option == "-device":
            text = value(option)
            with option_context(option, text):
                config.devices.append(parse_opts(text, "driver"))
        elif option == "-object":
            text = value(option)
            with option_context(option, text):
                config.objects.append(parse_opts(text, "qom-type"))
        elif option == "-kernel":
            config.kernel = _utf8(option, value(option), "path")
        elif option == "-append":
            config.append = _utf8(option, value(option), "text")
        elif option == "-m":
            text = value(option)
            with option_context(option, text):
                config.ram_size = _ram_size(text)
        elif option == "-icount":
            text = value(option)
            with option_context(option, text):
                config.icount = parse_opts(text, "shift")
                config.icount.check_keys({"shift", "sleep", "rr", "rrfile"})
                _rr_mode(config.icount)
        elif option == "-monitor":
            text = value(option)
            with option_context(option, text):
                config.monitor = parse_chardev(text)
        elif option == "-qmp":
            text = value(option)
            with option_context(option, text):
                config.qmp = parse_chardev(text)
        elif option == "-trace":
            text = value(option)
            with option_context(option, text):
                opts = parse_opts(text, "enable")
            if opts.get("enable") == "help":
                print(trace_help_text(), end="")
                return None
            config.trace.append(opts)
        elif option == "-D":
            config.logfile = value(option)
        elif option == "-nographic":
            pass
        elif option == "-display":
            value(option)
        else:
            raise UserError(f"{shown(option)}: invalid option (try -help)")
        i += 1
    if config.kernel is None:
        for option in MACHINE_ONLY:
            # QEMU, too, lets an empty -append pass.
            if option in given and (option != "-append" or config.append):
                raise UserError(f"{option} only allowed with -kernel option")
    return config


def _utf8(option: str, text: str, what: str) -> str:
    """The guest sees -kernel's name and -append's words as UTF-8 strings; bytes that are
    not UTF-8 reach Python as surrogate escapes and cannot be handed on."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise UserError(f"{option} {shown(text)}: the {what} is not valid UTF-8") from None
    return text


def _rr_mode(icount: Opts) -> str | None:
    """-icount rr=record|replay|off with rrfile=FILE (QEMU's replay_configure)."""
    mode = icount.get("rr", "off")
    if mode not in ("off", "record", "replay"):
        raise UserError("Parameter 'rr' expects 'off', 'record' or 'replay'")
    path = icount.get("rrfile")
    if mode == "off":
        if path is not None:
            raise UserError("rrfile= needs rr=record or rr=replay")
        return None
    if not path:
        raise UserError(f"rr={mode} needs rrfile=FILE")
    return mode


def _replayed_netdevs(config: Config, mode: str | None) -> set[str]:
    """The netdevs a filter-replay covers; under record/replay every host netdev needs
    one, since its frames are inputs the rrfile must hold."""
    if mode is None:
        return set()
    covered = {str(opts.get("netdev")) for opts in config.objects
               if opts.get("qom-type") == "filter-replay"}
    for opts in config.netdevs:
        if opts.get("type") in HOST_NETDEVS and opts.get("id") not in covered:
            raise UserError(f"-icount rr={mode}: netdev '{opts.get('id')}' needs "
                            f"-object filter-replay,id=ID,netdev={opts.get('id')}")
    return covered


def _ram_size(text: str) -> int:
    size = parse_size(text)
    if size == 0:
        raise UserError(f"invalid size '{shown(text)}': RAM size must be more than 0")
    size = -(-size // RAM_ALIGN) * RAM_ALIGN
    if size > RAM_MAX_SIZE:
        raise UserError(f"RAM size must be at most {RAM_MAX_SIZE >> 30}G")
    return size


def run(config: Config) -> int:
    """Build what the config describes, run it, tear it down; return the exit status.

    This is the body of the toynic process: it returns with SIGINT and SIGTERM blocked,
    so that one arriving while the process ends neither interrupts the teardown nor
    changes the exit status; blocked, it is discarded when the process exits.
    """
    loop = MainLoop()
    net = Net(loop)
    machine: Machine | None = None
    server: MonitorServer | None = None
    qmp_server: MonitorServer | None = None
    stdout: FdWriter | None = None
    stop = _SignalStop(loop)
    # The stdio monitor owns stdin, so the guest's console gets output only.
    on_stdio = [spec for spec in (config.monitor, config.qmp)
                if spec is not None and spec.kind == "stdio"]
    monitor_on_stdio = bool(on_stdio)
    # Always present, so the monitor's trace-event can switch events on at run time;
    # with every event off it costs one attribute test at each trace point.
    trace = Trace()
    rr_mode = _rr_mode(config.icount)
    journal: Recorder | Replayer | None = None
    try:
        if len(on_stdio) > 1:
            raise UserError("-qmp stdio: stdio is already the -monitor's")
        configure_trace(trace, config.trace, config.logfile,
                        lambda warning: print(f"toynic: {warning}", file=sys.stderr))
        replayed = _replayed_netdevs(config, rr_mode)
        for opts in config.netdevs:
            with option_context("-netdev", opts.text):
                net.add_netdev(opts, replayed=rr_mode == "replay" and opts.get("id") in replayed)
        if config.kernel is not None or monitor_on_stdio:
            stdout = _stdout_writer(loop, lambda: machine is not None)
        if config.kernel is not None:
            with option_context("-icount", config.icount.text):
                shift = config.icount.get_int("shift", 0)
                sleep = config.icount.get_bool("sleep", True)
            console_input = (not monitor_on_stdio and rr_mode != "replay"
                             and sys.stdin is not None and os.isatty(0))
            machine = Machine(loop, ram_size=config.ram_size, icount_shift=shift or 0,
                              icount_sleep=sleep, console=stdout,
                              stdin_fd=0 if console_input else None)
            with option_context("-kernel", config.kernel):
                machine.load_kernel(config.kernel, config.append)
            net.set_clock(machine.clock.now)
        for opts in config.devices:
            with option_context("-device", opts.text):
                if machine is None:
                    raise UserError("devices need a machine: give -kernel")
                machine.add_device(opts, net)
        for opts in config.objects:
            with option_context("-object", opts.text):
                net.add_object(opts)
        if machine is not None:
            # Lines start with the machine's virtual time, as a deterministic lab's do
            # (without its machine name: one process, one machine); a relay without a
            # machine has no virtual time and prints the bare event.
            clock = machine.clock
            trace.set_stamp(lambda: f"t={clock.now()}")
        trace.attach(net, machine)
        if rr_mode is not None and machine is not None and config.kernel is not None:
            header = run_header(config.kernel, config.append, config.ram_size, shift or 0,
                                sleep, [opts.text for opts in config.devices],
                                [replay.netdev.name for replay in net.replays.values()])
            rrfile = str(config.icount.get("rrfile"))
            journal = (Recorder(machine, net, rrfile, header) if rr_mode == "record"
                       else Replayer(machine, net, rrfile, header))
        for warning in net.startup_warnings():
            print(f"toynic: warning: {warning}", file=sys.stderr)
        _stop_on_signals(loop, stop)
        if config.monitor is not None and config.monitor.kind != "none":
            with option_context("-monitor", config.monitor.kind):
                server = MonitorServer(loop, Monitor(net, machine, on_quit=loop.stop, trace=trace),
                                       config.monitor, stdout=stdout)
            if config.monitor.wait and not server.wait_for_client():
                return 0
        if config.qmp is not None and config.qmp.kind != "none":
            with option_context("-qmp", config.qmp.kind):
                hmp = Monitor(net, machine, on_quit=loop.stop, trace=trace)
                qmp = Qmp(net, hmp, machine, on_quit=loop.stop)
                qmp_server = MonitorServer(loop, qmp.session, config.qmp, stdout=stdout)
            if config.qmp.wait and not qmp_server.wait_for_client():
                return 0
        if machine is not None:
            status = machine.run()
            if journal is not None:
                journal.finish(status)
            return status
        loop.run_forever()
        return 0
    finally:
        if isinstance(journal, Recorder):
            journal.close()
        if stdout is not None:
            # The end of the run waits for a slow reader to take the rest; a signal (the
            # one that ended the run, or one while waiting) gives up.
            stdout.drain(lambda: stop.seen)
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        if server is not None:
            server.close()
        if qmp_server is not None:
            qmp_server.close()
        net.close()
        if stdout is not None:
            stdout.close()
            if stdout.dropped and stdout.error is None:
                print(f"toynic: stdout: {stdout.dropped} bytes of output dropped "
                      "(the reader did not keep up)", file=sys.stderr)
        loop.close()
        trace.close()


class _SignalStop:
    """What SIGINT/SIGTERM do: stop the loop, and remember that they did."""

    def __init__(self, loop: MainLoop) -> None:
        self.loop = loop
        self.seen = False

    def __call__(self) -> None:
        self.seen = True
        self.loop.stop()


def _stop_on_signals(loop: MainLoop, stop: _SignalStop) -> None:
    for signum in STOP_SIGNALS:
        loop.set_signal_handler(signum, stop)


def _stdout_writer(loop: MainLoop, has_machine: Callable[[], bool]) -> FdWriter:
    """The console's and the stdio monitor's output: never blocking, bounded, dropping
    the oldest bytes when nobody reads (emu.core.fdwriter.FdWriter)."""
    writer = FdWriter.for_stdout(loop)

    def failed(err: OSError) -> None:
        # A reader that is gone (EPIPE) or a full device (ENOSPC) does not come back: a
        # machine stops as on SIGTERM; a frame relay goes on relaying.
        if has_machine():
            print(f"toynic: stdout: write failed: {err.strerror or err}; stopping",
                  file=sys.stderr, flush=True)
            loop.stop()
        else:
            print(f"toynic: stdout: write failed: {err.strerror or err}; "
                  "monitor output is dropped", file=sys.stderr, flush=True)

    writer.on_error = failed
    return writer


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
        if config is None:
            return 0
        return run(config)
    except UserError as err:
        print(f"toynic: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
