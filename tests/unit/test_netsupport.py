"""The test harness itself: reading a running child's output must not disturb it."""

import sys
import time

from tests.netsupport import Proc

CHILD = (
    "import time\n"
    "for i in range(300):\n"
    "    print(f'line{i:03d}', flush=True)\n"
    "    time.sleep(0.001)\n"
)


def test_polling_stdout_while_the_child_writes_keeps_every_byte_in_place():
    proc = Proc([sys.executable, "-c", CHILD], name="writer")
    try:
        deadline = time.monotonic() + 30
        polls = 0
        while proc.popen.poll() is None and time.monotonic() < deadline:
            proc.stdout  # noqa: B018 - each read used to move the child's file offset
            polls += 1
        assert proc.popen.wait(timeout=30) == 0
        assert polls > 0
        assert proc.stdout == "".join(f"line{i:03d}\n" for i in range(300))
    finally:
        proc.close()
