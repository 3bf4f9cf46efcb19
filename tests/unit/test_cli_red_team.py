"""The option parser in-process (issue 9, items 9, 13, 14): `-m` sizes by QEMU's rules,
machine-only options refused without `-kernel`, text that is not UTF-8, device ids, kernel
files that are not regular files; and a Hypothesis fuzz of `parse_args` on text and on
bytes-derived argv, which may raise UserError and nothing else."""

from __future__ import annotations

import contextlib
import io
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emu.board.layout import RAM_BASE
from emu.board.loader import MAX_KERNEL_SIZE, build_elf, read_kernel
from emu.board.machine import Machine
from emu.cli import DEFAULT_RAM, parse_args
from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import parse_opts, parse_size
from netdev.net import Net
from netdev.sockaddr import parse_host_port

KERNEL = "k.elf"


def error(*argv: str) -> str:
    with pytest.raises(UserError) as info:
        parse_args(list(argv))
    return str(info.value)


# -- -m ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "size"), [
    ("16", 16 << 20),         # no suffix: MiB
    ("16M", 16 << 20),
    ("16m", 16 << 20),
    ("512K", 512 << 10),
    ("1G", 1 << 30),
    ("1.5M", 3 << 19),
    ("0x10", 16 << 20),
    ("4B", 4),                # B is bytes, as in QEMU
    ("4b", 4),
    ("8192B", 8192),
    (" 8k ", 8192),
])
def test_sizes_follow_qemu_suffix_rules(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(("text", "fragment"), [
    ("nan", "invalid size 'nan'"),
    ("inf", "invalid size 'inf'"),
    ("1e400", "invalid size '1e400'"),
    ("-1", "invalid size '-1'"),
    ("", "invalid size ''"),
    ("16MB", "invalid size '16MB'"),   # one suffix letter, as QEMU
    ("1.5B", "a fraction of a byte"),
    ("9" * 5000, "too large"),
    ("0x" + "f" * 5000, "too large"),
    ("16E", "too large"),
])
def test_bad_sizes_are_user_errors(text: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        parse_size(text)


def test_size_messages_shorten_long_input() -> None:
    with pytest.raises(UserError) as info:
        parse_size("9" * 5000)
    assert len(str(info.value)) < 200
    assert "5000 characters" in str(info.value)


@pytest.mark.parametrize(("text", "ram"), [
    ("4B", 8 << 10),          # QEMU rounds RAM up to 8 KiB
    ("8193B", 16 << 10),
    ("1M", 1 << 20),
    ("2G", 2 << 30),
])
def test_ram_size_is_rounded_up_to_8k(text: str, ram: int) -> None:
    config = parse_args(["-kernel", KERNEL, "-m", text])
    assert config is not None and config.ram_size == ram


@pytest.mark.parametrize(("text", "fragment"), [
    ("0", "RAM size must be more than 0"),
    ("3G", "RAM size must be at most 2G"),
])
def test_ram_size_out_of_range(text: str, fragment: str) -> None:
    assert fragment in error("-kernel", KERNEL, "-m", text)


# -- machine-only options ----------------------------------------------------------------

@pytest.mark.parametrize("args", [["-append", "x"], ["-m", "16"], ["-icount", "shift=1"]])
def test_machine_options_need_a_kernel(args: list[str]) -> None:
    assert error(*args) == f"{args[0]} only allowed with -kernel option"


def test_empty_append_without_kernel_passes_as_in_qemu() -> None:
    config = parse_args(["-append", ""])
    assert config is not None and config.kernel is None and config.ram_size == DEFAULT_RAM


def test_machine_options_after_the_kernel_are_kept() -> None:
    config = parse_args(["-m", "1M", "-append", "a b", "-icount", "shift=2", "-kernel", KERNEL])
    assert config is not None
    assert (config.kernel, config.append, config.ram_size) == (KERNEL, "a b", 1 << 20)
    assert config.icount.get("shift") == "2"


# -- text that is not UTF-8 --------------------------------------------------------------

def test_append_that_is_not_utf8_is_refused() -> None:
    text = os.fsdecode(b"ip=1.2.3.4 \xff")
    assert error("-kernel", KERNEL, "-append", text) == (
        r"-append ip=1.2.3.4 \udcff: the text is not valid UTF-8")


def test_kernel_path_that_is_not_utf8_is_refused() -> None:
    path = os.fsdecode(b"/tmp/k\xfe.elf")
    assert error("-kernel", path) == r"-kernel /tmp/k\udcfe.elf: the path is not valid UTF-8"


def test_control_characters_in_an_option_stay_on_one_line() -> None:
    message = error("-icount", "shift=1,bad\nkey=2")
    assert message == r"-icount shift=1,bad\nkey=2: Parameter 'bad\nkey' is unexpected"
    assert "\n" not in error("-bo\ngus")


def test_load_kernel_refuses_an_argv_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "k.elf"
    path.write_bytes(build_elf(RAM_BASE, [(RAM_BASE, bytes(64))]))
    loop = MainLoop()
    try:
        machine = Machine(loop, ram_size=1 << 20, console=io.BytesIO(), stderr=io.StringIO())
        with pytest.raises(UserError, match="must be valid UTF-8"):
            machine.load_kernel(str(path), os.fsdecode(b"\xff"))
    finally:
        loop.close()


# -- devices -----------------------------------------------------------------------------

@contextlib.contextmanager
def machine_and_net() -> Iterator[tuple[Machine, Net]]:
    loop = MainLoop()
    net = Net(loop)
    try:
        yield Machine(loop, ram_size=1 << 20, console=io.BytesIO(), stderr=io.StringIO()), net
    finally:
        net.close()
        loop.close()


@pytest.mark.parametrize("device_id", ["", "x y", "1x", "x!", "é"])
def test_device_ids_follow_qemu_rule(device_id: str) -> None:
    with machine_and_net() as (machine, net):
        with pytest.raises(UserError, match="Parameter 'id' expects an identifier"):
            machine.add_device(parse_opts(f"ne2k_isa,id={device_id}", "driver"), net)
        assert machine.nics == []


def test_duplicate_device_id_is_refused() -> None:
    with machine_and_net() as (machine, net):
        first = machine.add_device(parse_opts("ne2k_isa,id=x.1", "driver"), net)
        with pytest.raises(UserError, match=r"^Duplicate ID 'x\.1' for device$"):
            machine.add_device(parse_opts("ne2k_isa,id=x.1,iobase=0x320", "driver"), net)
        # An id equal to an anonymous NIC's name would give two NICs the same name.
        anonymous = machine.add_device(parse_opts("ne2k_isa,iobase=0x340", "driver"), net)
        assert anonymous.name == "ne2k_isa.1"
        with pytest.raises(UserError, match=r"^Duplicate ID 'ne2k_isa\.1' for device$"):
            machine.add_device(parse_opts("ne2k_isa,id=ne2k_isa.1,iobase=0x360", "driver"), net)
        assert machine.nics == [first, anonymous]


# -- kernel files ------------------------------------------------------------------------

def test_kernel_must_be_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    # Opening a FIFO for reading would wait for a writer: it must not even block.
    with pytest.raises(UserError, match=r"not a regular file \(a FIFO\)"):
        read_kernel(str(tmp_path / "fifo"))
    with pytest.raises(UserError, match=r"not a regular file \(a character device\)"):
        read_kernel("/dev/zero")
    with pytest.raises(UserError, match="Is a directory"):
        read_kernel(str(tmp_path))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(UserError, match="No such device or address"):
            read_kernel(str(tmp_path / "sock"))


def test_kernel_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.elf"
    with open(path, "wb") as f:
        f.truncate(MAX_KERNEL_SIZE)
    assert len(read_kernel(str(path))) == MAX_KERNEL_SIZE
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(UserError, match=r"too large \(the limit is 64 MiB\)"):
        read_kernel(str(path))


# -- fuzz ---------------------------------------------------------------------------------

OPTIONS = ["-netdev", "-device", "-object", "-kernel", "-append", "-m", "-icount",
           "-monitor", "-trace", "-D", "-nographic", "-display", "--m", "-bogus", "-h"]
# Fragments that broke the parser once (red team, issue 9) or sit on a rule's edge.
NUMBERS = ["0", "1", "65535", "65536", "0x1f", "010", "08", "1.5", ".5", "1.", "1e400",
           "nan", "inf", "-1", "+2", "9" * 30, "9" * 5000, "0x" + "f" * 300, "\u0663", "\xb2"]
HOSTS = ["", "127.0.0.1", "127.1", "localhost", "a..b", ".", "a" * 64, "a" * 63 + ".",
         "a b", "1\x00", "a\x00", "\udcff", "1\udcff", "\xe9", "\u0340", "x" * 300,
         "1.2.3.4.5", "-", "a.b."]
SUFFIXES = ["", "B", "b", "K", "M", "G", "T", "E", "MB", "KiB", " "]
KEYS = ["id", "type", "listen", "connect", "fd", "mcast", "udp", "localaddr", "hubid",
        "netdev", "shift", "sleep", "file", "enable", "events", "server", "wait", ""]

numbers = st.sampled_from(NUMBERS) | st.text("0123456789xX.+-eE", max_size=12)
hosts = st.sampled_from(HOSTS) | st.text(max_size=12)
addresses = st.builds(lambda h, p: f"{h}:{p}", hosts, numbers) | hosts
sizes = st.builds(str.__add__, numbers, st.sampled_from(SUFFIXES))
pairs = st.builds(lambda k, v: f"{k}={v}" if k else v, st.sampled_from(KEYS),
                  addresses | numbers | st.text(max_size=8))
opt_strings = st.builds(lambda head, rest: ",".join([head, *rest]),
                        st.sampled_from(["socket", "hubport", "tap", "ne2k_isa",
                                         "filter-dump", "help", "*", ""]),
                        st.lists(pairs, max_size=4))
chardevs = st.builds(lambda kind, address, tail: f"{kind}{address}{tail}",
                     st.sampled_from(["tcp:", "unix:", "stdio", "none", "vc:", ""]),
                     addresses, st.sampled_from(["", ",server,nowait", ",server=on,wait=off",
                                                 ",nowait", ",server", ",wait=maybe"]))
option_pairs = (st.tuples(st.just("-m"), sizes)
                | st.tuples(st.just("-monitor"), chardevs)
                | st.tuples(st.sampled_from(["-netdev", "-device", "-object", "-icount",
                                             "-trace"]), opt_strings)
                | st.tuples(st.sampled_from(OPTIONS), st.text(max_size=20)))
argvs = st.builds(lambda pairs, tail: [arg for pair in pairs for arg in pair] + tail,
                  st.lists(option_pairs, max_size=6),
                  st.lists(st.sampled_from(OPTIONS) | st.text(max_size=10), max_size=2))


def _no_resolver(host: str) -> str:
    # Stands in for DNS. The real gethostbyname IDNA-encodes first: every name that
    # reaches it must be one that encodes.
    host.encode("idna")
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def only_user_errors(fn: Callable[..., object], *args: object) -> None:
    with mock.patch("socket.gethostbyname", _no_resolver), \
            contextlib.redirect_stdout(io.StringIO()):
        try:
            fn(*args)
        except UserError as err:
            assert "\n" not in str(err)


@given(argvs)
def test_fuzz_argv_raises_only_user_errors(argv: list[str]) -> None:
    only_user_errors(parse_args, argv)


@given(st.lists(st.sampled_from(OPTIONS).map(str.encode) | st.binary(max_size=40), max_size=8))
def test_fuzz_bytes_argv_raises_only_user_errors(argv: list[bytes]) -> None:
    # As Python hands a program its argv: bytes that are not UTF-8 become surrogates
    # (a NUL cannot be in an argument at all).
    only_user_errors(parse_args, [os.fsdecode(arg) for arg in argv if b"\0" not in arg])


@given(addresses)
def test_fuzz_host_port_raises_only_user_errors(text: str) -> None:
    only_user_errors(parse_host_port, text)


@given(sizes | st.text(max_size=20))
def test_fuzz_size_raises_only_user_errors(text: str) -> None:
    only_user_errors(parse_size, text)
