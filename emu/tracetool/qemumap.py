"""Where each trace event fires, in toynic and in QEMU — the table behind the HTML journey's
"QEMU function" (QEMU: the trace-events files name the functions their events sit in).

This is the one home of the table in code; docs/qemu-map.md ("Tracing") shows the same
facts to readers, and tests/tracetool/test_qemumap.py checks that the two agree.
"""

from __future__ import annotations

# event -> (toynic function, QEMU function and file)
QEMU_MAP: dict[str, tuple[str, str]] = {
    "ne2000_ioport_read": ("devices.dp8390.Dp8390.read_reg",
                           "ne2000_ioport_read (hw/net/ne2000.c)"),
    "ne2000_ioport_write": ("devices.dp8390.Dp8390.write_reg",
                            "ne2000_ioport_write (hw/net/ne2000.c)"),
    "ne2000_ioport_ignored": ("devices.ne2000.Ne2000Isa.read, .write",
                              "ne2000_read, ne2000_write (hw/net/ne2000.c)"),
    "ne2000_page3_ignored": ("devices.dp8390.Dp8390.read_reg, .write_reg",
                             "ne2000_ioport_read, ne2000_ioport_write (hw/net/ne2000.c)"),
    "ne2000_reset": ("devices.dp8390.Dp8390.reset", "ne2000_reset (hw/net/ne2000.c)"),
    "ne2000_dma_start": ("devices.ne2000.Ne2000Isa.write (CR)",
                         "ne2000_ioport_write (hw/net/ne2000.c), the E8390_CMD case"),
    "ne2000_dma_done": ("devices.dp8390.Dp8390._dma_advance",
                        "ne2000_dma_update (hw/net/ne2000.c)"),
    "ne2000_transmit": ("devices.dp8390.Dp8390.write_cr (CR.TXP)",
                        "the E8390_TRANS branch of ne2000_ioport_write (hw/net/ne2000.c)"),
    "ne2000_transmit_error": ("devices.dp8390.Dp8390.write_cr (CR.TXP)",
                              "the E8390_TRANS branch of ne2000_ioport_write "
                              "(hw/net/ne2000.c)"),
    "ne2000_receive": ("devices.dp8390.Dp8390.receive", "ne2000_receive (hw/net/ne2000.c)"),
    "ne2000_receive_drop": ("devices.dp8390.Dp8390.receive",
                            "ne2000_receive (hw/net/ne2000.c)"),
    "irq_set": ("emu.core.irq.IrqLine.set", "qemu_set_irq (hw/core/irq.c)"),
    "net_queue_send": ("netdev.queue.NetQueue.send", "qemu_net_queue_send (net/queue.c)"),
    "net_queue_send_batch": ("netdev.queue.NetQueue.send_batch",
                             "qemu_net_queue_send (net/queue.c), once per frame"),
    "net_queue_append": ("netdev.queue.NetQueue.send",
                         "qemu_net_queue_append (net/queue.c)"),
    "net_queue_flush": ("netdev.queue.NetQueue.flush", "qemu_net_queue_flush (net/queue.c)"),
    "net_queue_drop": ("netdev.queue.NetQueue.send", "qemu_net_queue_send (net/queue.c)"),
    "net_queue_purge": ("netdev.queue.NetQueue.purge", "qemu_net_queue_purge (net/queue.c)"),
    "net_socket_read": ("netdev.socket_stream.StreamSocket._on_readable",
                        "net_socket_send (net/socket.c)"),
    "net_socket_write": ("netdev.socket_stream.StreamSocket._write_out",
                         "net_socket_receive (net/socket.c)"),
    "net_socket_partial_send": ("netdev.socket_stream.StreamSocket._write_out",
                                "net_socket_receive (net/socket.c)"),
    "net_socket_backpressure": ("netdev.socket_poll.PolledSocket._set_reading",
                                "net_socket_read_poll (net/socket.c)"),
    "net_socket_connect": ("netdev.socket_stream.StreamSocket._on_connect_done",
                           "net_socket_connect (net/socket.c)"),
    "net_socket_accept": ("netdev.socket_stream.StreamSocket._accepted",
                          "net_socket_accept (net/socket.c)"),
    "net_socket_connect_error": ("netdev.socket_stream.StreamSocket._on_connect_done",
                                 "net_socket_connect (net/socket.c)"),
    "net_socket_disconnect": ("netdev.socket_stream.StreamSocket._close_connection",
                              "net_socket_send (net/socket.c)"),
    "net_socket_oversize": ("netdev.socket_stream.StreamSocket._close_connection",
                            "net_socket_send (net/socket.c)"),
    "net_socket_empty": ("netdev.socket_stream.StreamSocket._on_readable",
                         "net_socket_send (net/socket.c)"),
    "net_hub_forward": ("netdev.hub.HubPort.receive", "net_hub_receive (net/hub.c)"),
    "net_hub_hold": ("netdev.hub.HubPort.can_receive",
                     "net_hub_receive, net_hub_port_can_receive (net/hub.c)"),
}

# The step between two machines has no trace line of its own: one side's socket write,
# the kernel's TCP, the other side's read.
WIRE = ("netdev.framing.pack_len, then the peer's netdev.framing.Reassembler.feed",
        "net_socket_receive → TCP → net_socket_send (net/socket.c)")


def lookup(event: str) -> tuple[str, str]:
    """(toynic function, QEMU function) for a trace event; an event not in the table
    (newer than it) points the reader at the docs."""
    return QEMU_MAP.get(event, ("see docs/trace-events.md", "see docs/qemu-map.md"))
