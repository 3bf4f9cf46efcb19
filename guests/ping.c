/* ping.c - ICMP echo client.
 *
 * -append "ip=10.0.0.2 peer=10.0.0.1 [count=5] [size=56] [interval=0] [timeout=5]"
 * Resolves the peer with ARP, sends `count` echo requests of `size` data bytes
 * (`interval` ms apart after each reply or loss), waits up to `timeout`
 * virtual seconds for each reply and prints it with its round-trip time in
 * virtual time.  Exit 0 only if every request was answered; 1 otherwise. */
#include "net.h"
#include "rt.h"

#define PING_ID 0x7470    /* "tp" */

static struct net n;
static uint8_t data[1472];

int main(void)
{
    static const char *const known[] = {"ip", "peer", "count", "size", "interval", NET_COMMON_ARGS,
                                        0};
    uint32_t peer, count, size, interval, timeout_ms, received = 0;
    uint64_t rtt_min = ~0ull, rtt_max = 0, rtt_sum = 0;
    const uint8_t *peer_mac;
    char a[16], b[16], m[18];

    arg_check("ping", known);
    if (!arg_ip("ip", &n.ip) || !arg_ip("peer", &peer)) {
        printf("ping: usage: ip=A.B.C.D peer=A.B.C.D [count=N] [size=N] [interval=MS] "
               "[timeout=S|timeout_ms=MS]\n");
        return 2;
    }
    count = arg_uint("count", 5);
    size = arg_uint("size", 56);
    if (size > sizeof(data))
        size = sizeof(data);
    interval = arg_uint("interval", 0);
    timeout_ms = arg_ms("timeout", 5 * 1000);
    {
        uint32_t ip = n.ip;
        net_open(&n, "ping");
        n.ip = ip;
    }
    n.answer_ping = 1;
    for (uint32_t i = 0; i < size; i++)
        data[i] = (uint8_t)i;

    printf("ping: PING %s from %s: %u data bytes\n", ip_str(peer, a), ip_str(n.ip, b), size);
    peer_mac = arp_resolve(&n, peer, deadline_in_ms(timeout_ms), 200);
    if (!peer_mac) {
        printf("ping: no ARP reply from %s\n", a);
        printf("ping: %u packets transmitted, 0 received, 100%% packet loss\n", 0u);
        return 1;
    }
    printf("ping: %s is at %s\n", a, mac_str(peer_mac, m));

    for (uint32_t seq = 1; seq <= count; seq++) {
        uint64_t sent = time_now(), deadline = sent + (uint64_t)timeout_ms * TICKS_PER_MS;
        int got = 0;

        icmp_echo_send(&n, peer_mac, peer, 8, PING_ID, (uint16_t)seq, data, size);
        while (!got) {
            enum net_kind k = net_recv(&n, deadline);
            if (k == NET_TIMEOUT)
                break;
            if (k != NET_ECHO_REPLY || n.ip_src != peer || n.icmp_id != PING_ID ||
                n.icmp_seq != (uint16_t)seq)
                continue;
            uint64_t rtt = time_now() - sent;
            int intact = n.payload_len == size && memcmp(n.payload, data, size) == 0;
            printf("ping: %u bytes from %s: icmp_seq=%u ttl=%u time=", n.payload_len + ICMP_HLEN,
                   a, seq, n.ip_ttl);
            print_ms(rtt);
            printf(" ms%s\n", intact ? "" : " (payload CORRUPTED)");
            if (!intact)
                continue;
            got = 1;
            received++;
            rtt_sum += rtt;
            rtt_min = rtt < rtt_min ? rtt : rtt_min;
            rtt_max = rtt > rtt_max ? rtt : rtt_max;
        }
        if (!got)
            printf("ping: no reply for icmp_seq=%u\n", seq);
        if (interval && seq < count)
            delay_us(interval * 1000);
    }

    printf("ping: %u packets transmitted, %u received, %u%% packet loss\n", count, received,
           count ? (count - received) * 100 / count : 0);
    if (received) {
        printf("ping: rtt min/avg/max = ");
        print_ms(rtt_min);
        printf("/");
        print_ms(rtt_sum / received);
        printf("/");
        print_ms(rtt_max);
        printf(" ms\n");
    }
    return received == count ? 0 : 1;
}
