/* dhcp.c - obtains an address by DHCP, prints the lease, then answers pings.
 *
 * -append "[count=0] [timeout=10] [retry=1000]"
 * Exit 1 if no lease within `timeout` virtual seconds.  With count=N it then
 * answers N echo requests on the leased address (1 if `timeout` idle seconds
 * pass first); count=0 exits 0 right after printing the lease. */
#include "dhcp_client.h"
#include "net.h"
#include "rt.h"

/* time for the last reply to leave the host before power-off */
#define LINGER_MS 100

static struct net n;

int main(void)
{
    static const char *const known[] = {"count", "retry", NET_COMMON_ARGS, 0};
    struct dhcp_lease l;
    uint32_t count, timeout_ms, retry_ms;
    char a[16];

    arg_check("dhcp", known);
    count = arg_uint("count", 0);
    timeout_ms = arg_ms("timeout", 10 * 1000);
    retry_ms = arg_uint("retry", 1000);
    net_open(&n, "dhcp");
    if (dhcp_obtain(&n, &l, deadline_in_ms(timeout_ms), retry_ms) < 0) {
        printf("dhcp: no lease after %u.%03u s\n", timeout_ms / 1000, timeout_ms % 1000);
        return 1;
    }
    printf("dhcp: lease address=%s", ip_str(l.addr, a));
    printf(" mask=%s", ip_str(l.mask, a));
    printf(" router=%s", ip_str(l.router, a));
    printf(" dns=%s", ip_str(l.dns, a));
    printf(" lease=%us", l.lease_s);
    printf(" server=%s\n", ip_str(l.server, a));
    if (!count)
        return 0;

    n.answer_ping = 1;
    printf("dhcp: answering %u pings on %s\n", count, ip_str(n.ip, a));
    while (n.echo_replies < count) {
        enum net_kind k = net_recv_within(&n, timeout_ms);
        if (k == NET_TIMEOUT) {
            printf("dhcp: no ping for %u.%03u s, %u replies sent\n",
                   timeout_ms / 1000, timeout_ms % 1000, n.echo_replies);
            return 1;
        }
        if (k == NET_ECHO_REQUEST)
            printf("dhcp: echo reply to %s icmp_seq=%u\n", ip_str(n.ip_src, a), n.icmp_seq);
    }
    printf("dhcp: %u replies sent, done\n", n.echo_replies);
    net_linger(&n, LINGER_MS);
    return 0;
}
