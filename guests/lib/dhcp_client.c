/* dhcp_client.c - DHCP client: the four-message exchange, broadcast from 0.0.0.0.
 *
 * BOOTP layout: op, htype, hlen, hops, xid(4), secs(2), flags(2), ciaddr,
 * yiaddr, siaddr, giaddr (4 each), chaddr(16), sname(64), file(128), then the
 * magic cookie and the options. */
#include "dhcp_client.h"

#include "rt.h"

#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68
#define BOOTP_FIXED 236
#define DHCP_MAGIC 0x63825363u
#define BOOTREQUEST 1
#define BOOTREPLY 2
#define BOOTP_BROADCAST 0x8000

#define OPT_PAD 0
#define OPT_SUBNET_MASK 1
#define OPT_ROUTER 3
#define OPT_DNS 6
#define OPT_REQUESTED_IP 50
#define OPT_LEASE_TIME 51
#define OPT_MSG_TYPE 53
#define OPT_SERVER_ID 54
#define OPT_PARAM_LIST 55
#define OPT_END 255

enum { DHCPDISCOVER = 1, DHCPOFFER, DHCPREQUEST, DHCPDECLINE, DHCPACK, DHCPNAK };

static const char *const msg_names[] = {"?", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK",
                                        "NAK"};

static int send_msg(struct net *n, uint32_t xid, uint8_t type, uint32_t requested,
                    uint32_t server)
{
    uint8_t m[BOOTP_FIXED + 4 + 32];
    uint8_t *o = m + BOOTP_FIXED + 4;

    memset(m, 0, sizeof(m));
    m[0] = BOOTREQUEST;
    m[1] = 1;                     /* Ethernet */
    m[2] = ETH_ALEN;
    put32(m + 4, xid);
    put16(m + 10, BOOTP_BROADCAST);    /* we cannot take unicast before we have an address */
    mac_copy(m + 28, n->mac);
    put32(m + BOOTP_FIXED, DHCP_MAGIC);
    *o++ = OPT_MSG_TYPE;
    *o++ = 1;
    *o++ = type;
    if (requested) {
        *o++ = OPT_REQUESTED_IP;
        *o++ = 4;
        put32(o, requested);
        o += 4;
    }
    if (server) {
        *o++ = OPT_SERVER_ID;
        *o++ = 4;
        put32(o, server);
        o += 4;
    }
    *o++ = OPT_PARAM_LIST;
    *o++ = 4;
    *o++ = OPT_SUBNET_MASK;
    *o++ = OPT_ROUTER;
    *o++ = OPT_DNS;
    *o++ = OPT_LEASE_TIME;
    *o++ = OPT_END;
    printf("dhcp: sending %s xid=0x%08x\n", msg_names[type], xid);
    return udp_send(n, eth_broadcast, 0, IP_BROADCAST, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, m,
                    (unsigned)(o - m));
}

/* Parses a server reply for our xid: its message type (0 if not one), the
 * offered address and the options we use. */
static int parse_reply(const uint8_t *m, unsigned len, uint32_t xid, const uint8_t *mac,
                       struct dhcp_lease *l)
{
    int type = 0;
    const uint8_t *o = m + BOOTP_FIXED + 4, *end = m + len;

    if (len < BOOTP_FIXED + 4 || m[0] != BOOTREPLY || get32(m + 4) != xid ||
        !mac_equal(m + 28, mac) || get32(m + BOOTP_FIXED) != DHCP_MAGIC)
        return 0;
    memset(l, 0, sizeof(*l));
    l->addr = get32(m + 16);
    while (o < end && *o != OPT_END) {
        if (*o == OPT_PAD) {
            o++;
            continue;
        }
        if (o + 2 > end || o + 2 + o[1] > end)
            break;
        uint8_t code = o[0], olen = o[1];
        const uint8_t *v = o + 2;
        if (code == OPT_MSG_TYPE && olen >= 1)
            type = v[0];
        else if (code == OPT_SUBNET_MASK && olen >= 4)
            l->mask = get32(v);
        else if (code == OPT_ROUTER && olen >= 4)
            l->router = get32(v);
        else if (code == OPT_DNS && olen >= 4)
            l->dns = get32(v);
        else if (code == OPT_LEASE_TIME && olen >= 4)
            l->lease_s = get32(v);
        else if (code == OPT_SERVER_ID && olen >= 4)
            l->server = get32(v);
        o += 2 + olen;
    }
    return type;
}

/* Waits for a reply of type `want` (or NAK) until the deadline. */
static int await(struct net *n, uint32_t xid, int want, struct dhcp_lease *l, uint64_t deadline)
{
    char a[16], s[16];

    for (;;) {
        enum net_kind k = net_recv(n, deadline);
        if (k == NET_TIMEOUT)
            return 0;
        if (k != NET_UDP || n->dport != DHCP_CLIENT_PORT || n->sport != DHCP_SERVER_PORT)
            continue;
        int type = parse_reply(n->payload, n->payload_len, xid, n->mac, l);
        if (type == want || type == DHCPNAK) {
            printf("dhcp: got %s: %s from server %s\n", msg_names[type], ip_str(l->addr, a),
                   ip_str(l->server, s));
            return type;
        }
    }
}

int dhcp_obtain(struct net *n, struct dhcp_lease *lease, uint64_t deadline, uint32_t retry_ms)
{
    /* a transaction id that differs per MAC but not per run */
    uint32_t xid = get32(n->mac + 2) ^ 0x7079AC00u;
    struct dhcp_lease offer;

    n->ip = 0;
    while (time_now() < deadline) {
        uint64_t step = deadline_in_ms(retry_ms);
        if (step > deadline)
            step = deadline;
        xid++;
        send_msg(n, xid, DHCPDISCOVER, 0, 0);
        if (await(n, xid, DHCPOFFER, &offer, step) != DHCPOFFER)
            continue;
        step = deadline_in_ms(retry_ms);
        if (step > deadline)
            step = deadline;
        send_msg(n, xid, DHCPREQUEST, offer.addr, offer.server);
        int type = await(n, xid, DHCPACK, lease, step);
        if (type == DHCPACK && lease->addr) {
            if (!lease->server)
                lease->server = offer.server;
            n->ip = lease->addr;
            return 0;
        }
    }
    return -1;
}
