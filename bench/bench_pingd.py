"""Ping round trips: a Python client plays a host pinging the `pingd` guest over a stream
socket, as a Linux guest in QEMU does through `-netdev socket` (ARP once, then ICMP echo
requests, one in flight, each reply checked field by field).

Two rhythms per frame size (60-byte and 1514-byte Ethernet frames, `ping -s 18` and
`ping -s 1472`): back to back, and with an idle gap before each request, so the guest
is asleep in `wfi` when the request arrives (the wake-up path: ping's default rhythm,
shortened). A warm-up of `WARMUP` requests is not counted.

Prints JSON lines:
{"bench": "pingd_rtt", "frame_size": S, "gap_ms": G, "pings": N, "rtt_avg_us": A,
 "rtt_median_us": M, "rtt_p99_us": P, "ok": true}
"""

from __future__ import annotations

import json
import socket
import time

from bench_echo import HEADER, TIMEOUT, guest_on_socket, recv_exact

from emu.testing import arp_request, ethernet, icmp_echo, inet_checksum, ipv4

GUEST_IP = bytes([10, 0, 0, 1])
CLIENT_IP = bytes([10, 0, 0, 2])
CLIENT_MAC = bytes.fromhex("525400000002")
RUNS = ((60, 0.0, 2000), (1514, 0.0, 2000), (60, 0.002, 300), (1514, 0.002, 300))
WARMUP = 100
ETH_HLEN, IP_HLEN, ICMP_HLEN = 14, 20, 8


def echo_request(frame_size: int, seq: int, guest_mac: bytes) -> bytes:
    payload = bytes((seq + i) & 0xFF for i in range(frame_size - ETH_HLEN - IP_HLEN - ICMP_HLEN))
    icmp = icmp_echo(0x7A11, seq & 0xFFFF, payload)
    return ethernet(guest_mac, CLIENT_MAC, 0x0800,
                    ipv4(CLIENT_IP, GUEST_IP, 1, icmp, ident=seq & 0xFFFF))


def is_reply(frame: bytes, request: bytes, guest_mac: bytes) -> bool:
    """An echo reply to `request`: addresses swapped, ICMP type 0, same id, seq and
    data, both checksums right."""
    ip = frame[ETH_HLEN:ETH_HLEN + IP_HLEN]
    icmp = frame[ETH_HLEN + IP_HLEN:]
    sent_icmp = request[ETH_HLEN + IP_HLEN:]
    return (frame[:6] == CLIENT_MAC and frame[6:12] == guest_mac and frame[12:14] == b"\x08\x00"
            and ip[12:16] == GUEST_IP and ip[16:20] == CLIENT_IP and inet_checksum(ip) == 0
            and icmp[0] == 0 and icmp[4:] == sent_icmp[4:] and inet_checksum(icmp) == 0)


def send(sock: socket.socket, frame: bytes) -> None:
    sock.sendall(HEADER.pack(len(frame)) + frame)


def receive(sock: socket.socket) -> bytes:
    (length,) = HEADER.unpack(recv_exact(sock, 4))
    return recv_exact(sock, length)


def resolve(sock: socket.socket) -> bytes:
    """pingd's MAC address; ARP is asked again every 0.2 s while the guest boots (its
    NIC takes no frame before the driver starts it)."""
    sock.settimeout(0.2)
    try:
        for _ in range(int(TIMEOUT / 0.2)):
            send(sock, arp_request(CLIENT_MAC, CLIENT_IP, GUEST_IP))
            try:
                frame = receive(sock)
            except TimeoutError:
                continue
            if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02":
                return frame[22:28]
    finally:
        sock.settimeout(TIMEOUT)
    raise RuntimeError("pingd sent no ARP reply")


def wait_gap(gap: float) -> None:
    """Hold off `gap` seconds (the client's own pacing, not synchronisation)."""
    end = time.perf_counter() + gap
    while time.perf_counter() < end:
        time.sleep(max(0.0, end - time.perf_counter()))


def measure(sock: socket.socket, guest_mac: bytes, size: int, gap: float, count: int,
            first_seq: int) -> dict[str, object]:
    ok = True
    rtts = []
    clock = time.perf_counter
    for i in range(WARMUP + count):
        request = echo_request(size, first_seq + i, guest_mac)
        if gap:
            wait_gap(gap)
        t0 = clock()
        send(sock, request)
        reply = receive(sock)
        elapsed = clock() - t0
        ok = ok and is_reply(reply, request, guest_mac)
        if i >= WARMUP:
            rtts.append(elapsed)
    rtts.sort()
    return {"bench": "pingd_rtt", "frame_size": size, "gap_ms": gap * 1000, "pings": count,
            "rtt_avg_us": round(sum(rtts) / len(rtts) * 1e6, 1),
            "rtt_median_us": round(rtts[len(rtts) // 2] * 1e6, 1),
            "rtt_p99_us": round(rtts[min(len(rtts) - 1, int(0.99 * len(rtts)))] * 1e6, 1),
            "ok": ok}


def main() -> int:
    ok = True
    with guest_on_socket("pingd", "ip=10.0.0.1") as sock:
        guest_mac = resolve(sock)
        seq = 1
        for size, gap, count in RUNS:
            result = measure(sock, guest_mac, size, gap, count, seq)
            seq += WARMUP + count
            print(json.dumps(result), flush=True)
            ok = ok and bool(result["ok"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
