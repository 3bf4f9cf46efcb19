"""RecordingClient — the test's own end of a link, a NetClient that keeps what it is
given (QEMU's qtest tests read frames back from a socket; in-process we take them
straight off the net layer)."""

from __future__ import annotations

from netdev.client import NetClient


class RecordingClient(NetClient):
    """A NetClient that records every frame delivered to it, in order, in `received`.

    Plug it in with `netdev.client.connect_peers` (or `Net.add_nic`) and send with the
    NetClient methods (`send`, `send_async`, `send_batch`). `accepting = False` makes it a
    slow receiver: it refuses frames ("not now") and the net layer queues them at its
    door until `resume()`. A test that needs other behaviour subclasses it.
    """

    def __init__(self, name: str = "peer", model: str = "test") -> None:
        super().__init__(name, model)
        self.received: list[bytes] = []
        self.accepting = True

    def receive(self, frame: bytes) -> int:
        if not self.accepting:
            return 0
        self.received.append(bytes(frame))
        # A 0 return means "not now"; an empty frame is taken all the same.
        return len(frame) or 1

    def can_receive(self) -> bool:
        return self.accepting

    def resume(self) -> None:
        """Start accepting again and take what the net layer queued meanwhile."""
        self.accepting = True
        self.flush_queued()
