/* pingd.c - answers ARP and ICMP echo for its address.
 *
 * -append "ip=10.0.0.1 [count=0] [timeout=0]"
 * Prints each echo request it answers.  With count=N it exits 0 after N
 * replies (1 if `timeout` virtual seconds pass without a request first);
 * count=0 serves forever, or until `timeout` idle seconds if one is given. */
#include "net.h"
#include "rt.h"

/* time for the last reply to leave the host before power-off */
#define LINGER_MS 100

static struct net n;

int main(void)
{
    static const char *const known[] = {"ip", "count", NET_COMMON_ARGS, 0};
    uint32_t ip, count, timeout_ms;
    uint32_t arp_seen = 0;
    char a[16], b[18];

    arg_check("pingd", known);
    if (!arg_ip("ip", &ip)) {
        printf("pingd: usage: ip=A.B.C.D [count=N] [timeout=S|timeout_ms=MS]\n");
        return 2;
    }
    count = arg_uint("count", 0);
    timeout_ms = arg_ms("timeout", 0);
    net_open(&n, "pingd");
    n.ip = ip;
    n.answer_ping = 1;
    if (count)
        printf("pingd: answering ARP and ping for %s, %u replies\n", ip_str(ip, a), count);
    else
        printf("pingd: answering ARP and ping for %s\n", ip_str(ip, a));

    for (;;) {
        enum net_kind k = net_recv_within(&n, timeout_ms ? timeout_ms : FOREVER_MS);
        if (k == NET_TIMEOUT) {
            printf("pingd: no request for %u.%03u s, %u replies sent\n",
                   timeout_ms / 1000, timeout_ms % 1000, n.echo_replies);
            return count ? 1 : 0;
        }
        if (k == NET_ECHO_REQUEST) {
            printf("pingd: echo reply to %s icmp_seq=%u (%u data bytes)\n", ip_str(n.ip_src, b),
                   n.icmp_seq, n.payload_len);
            if (count && n.echo_replies >= count) {
                printf("pingd: %u replies sent, %u ARP replies, done\n", n.echo_replies,
                       n.arp_replies);
                net_linger(&n, LINGER_MS);
                return 0;
            }
        } else if (k == NET_ARP && n.arp_replies != arp_seen) {
            arp_seen = n.arp_replies;
            printf("pingd: ARP reply to %s\n", mac_str(n.eth_src, b));
        } else if (k == NET_BAD) {
            printf("pingd: malformed frame from %s dropped\n", mac_str(n.eth_src, b));
        }
    }
}
