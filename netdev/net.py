"""Net — one machine's (or relay process's) set of net clients; QEMU's net/net.c
(net_clients, net_init_netdev, net_check_clients, hmp_info_network, qmp_set_link) and
filter objects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from emu.core.errors import UserError
from emu.core.loop import MainLoop
from emu.core.opts import Opts, check_id, shown
from emu.core.timeline import HostTimeline, Timeline
from netdev.client import NetClient, connect_peers
from netdev.dgram import create_dgram_netdev
from netdev.dump import DEFAULT_MAXLEN, DumpFilter
from netdev.filter_netem import NETEM_KEYS, NetemFilter, NetemParams
from netdev.filter_replay import ReplayedNetdev, ReplayFilter
from netdev.frame_fd import FrameFd
from netdev.hub import Hub, HubPort
from netdev.socket import create_socket_netdev
from netdev.socket_poll import PolledSocket
from netdev.stream import create_stream_netdev
from netdev.tap import create_tap_netdev
from netdev.vde import create_vde_netdev

HUBPORT_KEYS = frozenset({"type", "id", "hubid", "netdev"})
DUMP_KEYS = frozenset({"qom-type", "id", "netdev", "file", "maxlen", "queue", "status"})
HOST_NETDEVS = ("socket", "stream", "dgram", "tap", "vde")


class Net:
    """Every net client of one process, in creation order, plus hubs and dump filters."""

    def __init__(self, loop: MainLoop) -> None:
        self.loop = loop
        # What filters schedule on: real time here; a deterministic lab replaces it with
        # its global virtual time before adding filters.
        self.timeline: Timeline = HostTimeline(loop)
        self.clients: list[NetClient] = []
        self._netdevs: dict[str, NetClient] = {}
        self.hubs: dict[int, Hub] = {}
        self._hub_order: list[Hub] = []
        self.dumps: dict[str, DumpFilter] = {}
        self.netems: dict[str, NetemFilter] = {}
        self.replays: dict[str, ReplayFilter] = {}
        # Told of each set_link before it applies (record/replay); may refuse it.
        self.link_observer: Callable[[str, bool], None] | None = None
        self._clock: Callable[[], int] | None = None
        # Told of each QMP event a netdev raises (name, data), e.g. by a QMP monitor.
        self.event_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._closed = False

    def emit_event(self, name: str, data: dict[str, Any]) -> None:
        """Hand a QMP event (NETDEV_STREAM_CONNECTED, ...) to every listener."""
        for listener in list(self.event_listeners):
            listener(name, data)

    def set_clock(self, clock: Callable[[], int]) -> None:
        """Stamp pcap records with `clock()` (ns, e.g. the machine's virtual clock), for
        existing dump filters and those added later."""
        self._clock = clock
        for dump in self.dumps.values():
            dump.clock = clock

    # -- building --------------------------------------------------------------------------

    def add_netdev(self, opts: Opts, *, replayed: bool = False) -> NetClient:
        """Create a `-netdev`; `replayed`: a host netdev stands in as a
        `netdev.filter_replay.ReplayedNetdev`, which opens nothing (`-icount rr=replay`)."""
        kind = opts.get("type")
        name = check_id(opts.require("id"))
        if name in self._netdevs:
            raise UserError(f"Duplicate ID '{name}' for netdev")
        if replayed and kind in HOST_NETDEVS:
            client: NetClient = ReplayedNetdev(name, str(kind))
        elif kind == "socket":
            client = create_socket_netdev(self.loop, name, opts, self._taken_fds())
        elif kind == "stream":
            client = create_stream_netdev(self.loop, name, opts, self._taken_fds(), self.emit_event)
        elif kind == "dgram":
            client = create_dgram_netdev(self.loop, name, opts, self._taken_fds())
        elif kind == "tap":
            client = create_tap_netdev(self.loop, name, opts, self._taken_fds())
        elif kind == "vde":
            client = create_vde_netdev(self.loop, name, opts)
        elif kind == "hubport":
            client = self._add_hubport(name, opts)
        elif kind is None:
            raise UserError("Parameter 'type' is missing")
        else:
            raise UserError(f"Parameter 'type' does not accept value '{kind}'")
        self._netdevs[name] = client
        self.clients.append(client)
        return client

    def _add_hubport(self, name: str, opts: Opts) -> HubPort:
        opts.check_keys(HUBPORT_KEYS)
        hub_text = opts.require("hubid")
        hub_id = opts.get_int("hubid")
        if hub_id is None or not 0 <= hub_id <= 0x7FFFFFFF:
            raise UserError(f"Parameter 'hubid' expects a number, not '{shown(hub_text)}'")
        other_id = opts.get("netdev")
        other = None if other_id is None else self.find_netdev(other_id)
        if other is not None and other.peer is not None:
            raise UserError(f"Property 'netdev' can't take value '{other_id}', it's in use")
        if isinstance(other, HubPort):
            loop = self._hub_path(other.hub, hub_id)
            if loop is not None:
                raise UserError(
                    f"Property 'netdev' can't take value '{other_id}': the hubs would form a "
                    f"loop ({' -> '.join(f'hub {h}' for h in [hub_id, *loop])}) in which "
                    f"every frame circles forever")
        hub = self.hubs.get(hub_id)
        if hub is None:
            hub = self.hubs[hub_id] = Hub(hub_id)
            self._hub_order.insert(0, hub)
        port = hub.add_port(name)
        if other is not None:
            connect_peers(port, other)
        return port

    def _hub_path(self, start: Hub, goal: int) -> list[int] | None:
        """The ids of the hubs on a path from `start` to hub `goal` over hub ports peered
        with each other (start first, goal last), or None if there is none. Joining hub
        `goal` to `start` directly would then close a loop."""
        came_from: dict[int, int | None] = {start.id: None}
        todo = [start]
        while todo:
            hub = todo.pop()
            if hub.id == goal:
                path = [hub.id]
                while (previous := came_from[path[-1]]) is not None:
                    path.append(previous)
                return path[::-1]
            for port in hub.ports:
                peer = port.peer
                if isinstance(peer, HubPort) and peer.hub.id not in came_from:
                    came_from[peer.hub.id] = hub.id
                    todo.append(peer.hub)
        return None

    def _taken_fds(self) -> dict[int, str]:
        """Descriptors this process already uses, which `fd=` must not take over."""
        taken = {fd: "a descriptor of toynic's event loop" for fd in self.loop.own_fds()}
        for client in self.clients:
            if isinstance(client, PolledSocket | FrameFd):
                for fd in client.owned_fds():
                    taken[fd] = f"a socket of netdev {client.name}"
        return taken

    def add_object(self, opts: Opts) -> None:
        kind = opts.get("qom-type")
        if kind == "filter-netem":
            self._add_netem(opts)
            return
        if kind == "filter-replay":
            self._add_replay(opts)
            return
        if kind != "filter-dump":
            raise UserError(f"invalid object type: {kind}")
        opts.check_keys(DUMP_KEYS)
        name = check_id(opts.require("id"))
        self._check_new_object(name)
        netdev_id = opts.require("netdev")
        path = opts.get("file")
        if path is None:
            raise UserError("dump filter needs 'file' property set!")
        maxlen = opts.get_int("maxlen", DEFAULT_MAXLEN)
        assert maxlen is not None
        if opts.get("status", "on") not in ("on", "off"):
            raise UserError("Parameter 'status' expects 'on' or 'off'")
        target = self.find_netdev(netdev_id)
        dump = DumpFilter(name, path, maxlen=maxlen, queue=opts.get("queue", "all") or "all",
                          clock=self._clock)
        self.dumps[name] = dump
        if opts.get("status", "on") == "on":
            target.filters.append(dump)

    def _add_netem(self, opts: Opts) -> None:
        opts.check_keys(NETEM_KEYS)
        name = check_id(opts.require("id"))
        self._check_new_object(name)
        target = self.find_netdev(opts.require("netdev"))
        if opts.get("status", "on") not in ("on", "off"):
            raise UserError("Parameter 'status' expects 'on' or 'off'")
        netem = NetemFilter(name, target, self.timeline, NetemParams.from_opts(opts),
                            queue=opts.get("queue", "all") or "all")
        self.netems[name] = netem
        if opts.get("status", "on") == "on":
            netem.attach()
            for replay in self.replays.values():
                replay.keep_last()

    def _add_replay(self, opts: Opts) -> None:
        replay = ReplayFilter.from_opts(opts, self.find_netdev(opts.require("netdev")))
        self._check_new_object(replay.name)
        if any(other.netdev is replay.netdev for other in self.replays.values()):
            raise UserError(f"netdev '{replay.netdev.name}' already has a filter-replay")
        if opts.get("status", "on") != "on":
            raise UserError("filter-replay: 'status' must be 'on'")
        self.replays[replay.name] = replay
        replay.attach()

    def _check_new_object(self, name: str) -> None:
        if name in self.dumps or name in self.netems or name in self.replays:
            raise UserError(f"attempt to add duplicate property '{name}' to object")

    def remove_netdev(self, netdev_id: str) -> None:
        """QEMU's qmp_netdev_del: close netdev `netdev_id` and unplug it from its peer."""
        client = self._netdevs.pop(netdev_id, None)
        if client is None:
            raise UserError(f"Device '{netdev_id}' not found")
        self.clients.remove(client)
        client.purge_queued()
        peer = client.peer
        if peer is not None:
            peer.incoming_queue.purge(client)
            peer.peer = client.peer = None
        client.cleanup()

    def find_netdev(self, netdev_id: str) -> NetClient:
        client = self._netdevs.get(netdev_id)
        if client is None:
            raise UserError(f"Property 'netdev' can't find value '{netdev_id}'")
        return client

    def add_nic(self, nic: NetClient, netdev_id: str | None) -> None:
        """Register a guest's card (a client of kind "nic"), joined to netdev `netdev_id`."""
        if netdev_id is not None:
            netdev = self.find_netdev(netdev_id)
            if netdev.peer is not None:
                raise UserError(f"Property 'netdev' can't take value '{netdev_id}', it's in use")
            connect_peers(nic, netdev)
        self.clients.append(nic)

    def add_client(self, client: NetClient) -> None:
        """Register a client that is neither a netdev nor a NIC (a test's own peer), so
        `info network` and `close()` know it."""
        self.clients.append(client)

    # -- link state ------------------------------------------------------------------------

    def set_link(self, name: str, up: bool) -> None:
        """QEMU's qmp_set_link: the link of the client called `name` goes up or down, and
        its peer's with it when that peer is a NIC, so the guest sees the cable state. A
        netdev or hub port at the other end keeps its own link: a hub goes on serving its
        other ports."""
        client = next((c for c in self.clients if c.name == name), None)
        if client is None:
            raise UserError(f"Device '{name}' not found")
        if self.link_observer is not None:
            self.link_observer(name, up)
        client.link_down = not up
        peer = client.peer
        if peer is not None and peer.kind == "nic":
            peer.link_down = not up

    # -- reporting -------------------------------------------------------------------------

    def startup_warnings(self) -> list[str]:
        """QEMU's net_check_clients wording."""
        warnings: list[str] = []
        for hub in self._hub_order:
            has_nic = has_host = False
            for port in hub.ports:
                peer = port.peer
                if peer is None:
                    warnings.append(f"hub port {port.name} has no peer")
                elif peer.kind == "nic":
                    has_nic = True
                elif not isinstance(peer, HubPort):
                    has_host = True
            if has_host and not has_nic:
                warnings.append(f"hub {hub.id} with no nics")
            if has_nic and not has_host:
                warnings.append(f"hub {hub.id} is not connected to host network")
        for client in self.clients:
            if client.peer is None:
                kind = "nic" if client.kind == "nic" else "netdev"
                warnings.append(f"{kind} {client.name} has no peer")
        return warnings

    def _line(self, client: NetClient) -> str:
        kind = "nic" if client.kind == "nic" else client.model
        return (f"{client.name}: index={client.queue_index},type={kind},{client.info_str}"
                + self._filter_lines(client))

    def _filter_lines(self, client: NetClient) -> str:
        """QEMU lists a netdev's filters under it, one indented line each."""
        return "".join(f"\n    {flt.describe()}"
                       for flt in [*self.netems.values(), *self.replays.values()]
                       if flt.netdev is client)

    def info_network(self) -> str:
        """HMP `info network` (QEMU 7.2 layout): hubs first, then the other clients."""
        lines: list[str] = []
        for hub in self._hub_order:
            lines.append(f"hub {hub.id}")
            for port in hub.ports:
                if port.peer is None:
                    lines.append(f" \\ {port.name}{self._filter_lines(port)}")
                else:
                    lines.append(f" \\ {port.name}: {self._line(port.peer)}"
                                 f"{self._filter_lines(port)}")
        for client in self.clients:
            peer = client.peer
            if isinstance(client, HubPort) or isinstance(peer, HubPort):
                continue
            nic = client.kind == "nic"
            if peer is None or nic:
                lines.append(self._line(client))
            if peer is not None and nic:
                lines.append(f" \\ {self._line(peer)}")
        return "\n".join(lines)

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Release every socket, fd handler and dump file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for client in reversed(self.clients):
            # One socket failing to close must not keep the others open.
            with contextlib.suppress(OSError):
                client.cleanup()
        for dump in self.dumps.values():
            dump.close()
        for netem in self.netems.values():
            netem.close()
