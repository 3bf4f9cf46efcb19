/* udp-echo.c - a UDP echo server (and ARP/ping responder) on one address.
 *
 * -append "ip=10.0.0.1 [port=7] [count=0] [timeout=0]"
 * Sends every datagram to `port` back to where it came from.  count=N: exit 0
 * after N datagrams (1 if `timeout` idle virtual seconds pass first). */
#include "net.h"
#include "rt.h"

/* time for the last reply to leave the host before power-off */
#define LINGER_MS 100

static struct net n;
static uint8_t buf[1500];

int main(void)
{
    static const char *const known[] = {"ip", "port", "count", NET_COMMON_ARGS, 0};
    uint32_t ip, port, count, timeout_ms, echoed = 0;
    char a[16], b[16];

    arg_check("udp-echo", known);
    if (!arg_ip("ip", &ip)) {
        printf("udp-echo: usage: ip=A.B.C.D [port=N] [count=N] [timeout=S|timeout_ms=MS]\n");
        return 2;
    }
    port = arg_uint("port", 7);
    count = arg_uint("count", 0);
    timeout_ms = arg_ms("timeout", 0);
    net_open(&n, "udp-echo");
    n.ip = ip;
    n.answer_ping = 1;
    printf("udp-echo: echoing UDP on %s:%u\n", ip_str(ip, a), port);

    for (;;) {
        enum net_kind k = net_recv_within(&n, timeout_ms ? timeout_ms : FOREVER_MS);
        if (k == NET_TIMEOUT) {
            printf("udp-echo: idle for %u.%03u s, %u datagrams echoed\n",
                   timeout_ms / 1000, timeout_ms % 1000, echoed);
            return count && echoed < count ? 1 : 0;
        }
        if (k != NET_UDP || n.dport != port || n.ip_dst != ip)
            continue;
        uint8_t mac[ETH_ALEN];
        uint32_t src = n.ip_src, len = n.payload_len;
        uint16_t sport = n.sport;
        mac_copy(mac, n.eth_src);
        memcpy(buf, n.payload, len);
        udp_send(&n, mac, ip, src, (uint16_t)port, sport, buf, len);
        echoed++;
        printf("udp-echo: %u bytes from %s:%u echoed\n", len, ip_str(src, b), sport);
        if (count && echoed >= count) {
            printf("udp-echo: %u datagrams echoed, done\n", echoed);
            net_linger(&n, LINGER_MS);
            return 0;
        }
    }
}
