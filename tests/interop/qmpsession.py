"""A QMP client for the interop tests: the QEMU project's own `qemu.qmp` (its synchronous
`legacy.QEMUMonitorProtocol`), connected and negotiated on the QMP unix socket of a
toynic or QEMU process, the same code for both."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from qemu.qmp import legacy as qmp_legacy

from tests.netsupport import Proc, wait_for


@contextlib.contextmanager
def qmp_session(proc: Proc, qmp_path: Path,
                timeout: float) -> Iterator[tuple[qmp_legacy.QEMUMonitorProtocol, dict]]:
    """The client (commands time out after `timeout`) and the server's greeting, once the
    socket at `qmp_path` accepts; afterwards the client is closed, then `proc`."""
    client = None
    try:
        def connected() -> tuple[qmp_legacy.QEMUMonitorProtocol, dict] | None:
            if not proc.alive():
                raise RuntimeError(f"exited early: {proc.describe()}")
            if not qmp_path.exists():
                return None
            qmp = qmp_legacy.QEMUMonitorProtocol(str(qmp_path))
            try:
                return qmp, qmp.connect(negotiate=True)
            except Exception:
                qmp.close()
                return None

        client, greeting = wait_for(connected, timeout, "the QMP socket")
        client.settimeout(timeout)
        yield client, greeting
    finally:
        if client is not None:
            # After quit the server is gone: the client reports the lost connection.
            with contextlib.suppress(EOFError, OSError):
                client.close()
        proc.close()
