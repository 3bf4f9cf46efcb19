/* net.c - Ethernet, ARP, IPv4, ICMP echo and UDP for the toynic guests.
 *
 * One frame at a time: net_recv reads a frame into n->rx, answers what the
 * stack answers by itself (ARP requests for our address, ICMP echo
 * requests), and hands the rest to the program with parsed fields. */
#include "net.h"

#include "rt.h"

const uint8_t eth_broadcast[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

#define ARP_HLEN 28
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define IP_DEFAULT_TTL 64

/* ---- helpers ---- */

uint32_t csum_add(uint32_t sum, const void *data, unsigned len)
{
    const uint8_t *p = data;

    if (!((uintptr_t)p & 1)) {
        for (; len >= 2 && ((uintptr_t)p & 3); len -= 2, p += 2)
            sum += (uint32_t)(p[0] << 8 | p[1]);
        if (len >= 4) {
            /* Whole words, little-endian: their one's-complement sum, folded to 16
             * bits, is the byte-swapped sum of the big-endian halfwords (RFC 1071),
             * at a quarter of the instructions. */
            uint32_t acc = 0, w;
            for (; len >= 16; len -= 16, p += 16) {
                w = ((const uint32_t *)p)[0];
                acc += w;
                acc += acc < w;
                w = ((const uint32_t *)p)[1];
                acc += w;
                acc += acc < w;
                w = ((const uint32_t *)p)[2];
                acc += w;
                acc += acc < w;
                w = ((const uint32_t *)p)[3];
                acc += w;
                acc += acc < w;
            }
            for (; len >= 4; len -= 4, p += 4) {
                w = *(const uint32_t *)p;
                acc += w;
                acc += acc < w;
            }
            acc = (acc & 0xffff) + (acc >> 16);
            acc = (acc & 0xffff) + (acc >> 16);
            sum += (acc & 0xff) << 8 | acc >> 8;
        }
    }
    for (; len > 1; len -= 2, p += 2)
        sum += (uint32_t)(p[0] << 8 | p[1]);
    if (len)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

const char *ip_str(uint32_t ip, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
    return buf;
}

const char *mac_str(const uint8_t *mac, char buf[18])
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
    return buf;
}

/* ---- bring-up ---- */

void net_open(struct net *n, const char *prog)
{
    uint16_t iobase = (uint16_t)arg_uint("iobase", NE2000_DEFAULT_IOBASE);
    uint8_t irq = (uint8_t)arg_uint("irq", NE2000_DEFAULT_IRQ);
    char macbuf[18];
    int err;

    memset(n, 0, sizeof(*n));
    err = ne2k_probe(&n->nic, iobase, irq);
    if (err) {
        static const char *const why[] = {"", "no card", "no reset acknowledge",
                                          "bad PROM signature"};
        printf("%s: no NE2000 at 0x%03x: %s\n", prog, iobase, why[-err]);
        exit(3);
    }
    n->nic.polled = arg_uint("poll", 0) != 0;
    ne2k_open(&n->nic, E8390_RXCONFIG | (arg_uint("promisc", 0) ? ENRCR_PRO : 0));
    mac_copy(n->mac, n->nic.mac);
    printf("%s: NE2000 at 0x%03x irq %u, MAC %s, %s mode\n", prog, iobase, irq,
           mac_str(n->mac, macbuf), n->nic.polled ? "polled" : "interrupt");
}

/* ---- Ethernet ---- */

int eth_send(struct net *n, const uint8_t *dst, uint16_t type, unsigned payload_len)
{
    mac_copy(n->tx, dst);
    mac_copy(n->tx + ETH_ALEN, n->mac);
    put16(n->tx + 12, type);
    return ne2k_send(&n->nic, n->tx, ETH_HLEN + payload_len);
}

/* ---- ARP ---- */

static void arp_learn(struct net *n, uint32_t ip, const uint8_t *mac)
{
    struct arp_entry *e = 0;

    if (!ip)
        return;
    for (int i = 0; i < ARP_CACHE_SIZE; i++)
        if (n->arp[i].valid && n->arp[i].ip == ip)
            e = &n->arp[i];
    if (!e) {
        /* round-robin replacement: the cache is tiny and entries never expire */
        e = &n->arp[n->arp_next];
        n->arp_next = (n->arp_next + 1) % ARP_CACHE_SIZE;
    }
    e->ip = ip;
    mac_copy(e->mac, mac);
    e->valid = 1;
}

const uint8_t *arp_lookup(struct net *n, uint32_t ip)
{
    if (ip == IP_BROADCAST)
        return eth_broadcast;
    for (int i = 0; i < ARP_CACHE_SIZE; i++)
        if (n->arp[i].valid && n->arp[i].ip == ip)
            return n->arp[i].mac;
    return 0;
}

static int arp_send(struct net *n, uint16_t op, const uint8_t *eth_dst, const uint8_t *tha,
                    uint32_t tpa)
{
    uint8_t *a = n->tx + ETH_HLEN;

    put16(a, 1);                   /* hardware type: Ethernet */
    put16(a + 2, ETHERTYPE_IP);    /* protocol type */
    a[4] = ETH_ALEN;
    a[5] = 4;
    put16(a + 6, op);
    mac_copy(a + 8, n->mac);
    put32(a + 14, n->ip);
    mac_copy(a + 18, tha);
    put32(a + 24, tpa);
    return eth_send(n, eth_dst, ETHERTYPE_ARP, ARP_HLEN);
}

int arp_request(struct net *n, uint32_t ip)
{
    static const uint8_t zero[ETH_ALEN];

    return arp_send(n, ARPOP_REQUEST, eth_broadcast, zero, ip);
}

static enum net_kind arp_input(struct net *n, const uint8_t *a, unsigned len)
{
    if (len < ARP_HLEN || get16(a) != 1 || get16(a + 2) != ETHERTYPE_IP || a[4] != ETH_ALEN ||
        a[5] != 4)
        return NET_BAD;
    uint16_t op = get16(a + 6);
    uint32_t spa = get32(a + 14), tpa = get32(a + 24);
    uint8_t sha[ETH_ALEN];

    mac_copy(sha, a + 8);
    if (op == ARPOP_REPLY || (op == ARPOP_REQUEST && n->ip && tpa == n->ip))
        arp_learn(n, spa, sha);
    if (op == ARPOP_REQUEST && n->ip && tpa == n->ip) {
        arp_send(n, ARPOP_REPLY, sha, sha, spa);
        n->arp_replies++;
    }
    return NET_ARP;
}

const uint8_t *arp_resolve(struct net *n, uint32_t ip, uint64_t deadline, uint32_t retry_ms)
{
    const uint8_t *mac = arp_lookup(n, ip);

    while (!mac && time_now() < deadline) {
        uint64_t retry = deadline_in_ms(retry_ms);
        arp_request(n, ip);
        while (!(mac = arp_lookup(n, ip)) && net_recv(n, retry < deadline ? retry : deadline))
            ;
    }
    return mac;
}

/* ---- IPv4 ---- */

int ip_send(struct net *n, const uint8_t *dst_mac, uint32_t src, uint32_t dst, uint8_t proto,
            unsigned payload_len)
{
    uint8_t *h = n->tx + ETH_HLEN;

    h[0] = 0x45;                   /* version 4, 5 words of header */
    h[1] = 0;
    put16(h + 2, (uint16_t)(IP_HLEN + payload_len));
    put16(h + 4, n->ip_id++);
    put16(h + 6, 0x4000);          /* don't fragment */
    h[8] = IP_DEFAULT_TTL;
    h[9] = proto;
    put16(h + 10, 0);
    put32(h + 12, src);
    put32(h + 16, dst);
    put16(h + 10, csum_fold(csum_add(0, h, IP_HLEN)));
    return eth_send(n, dst_mac, ETHERTYPE_IP, IP_HLEN + payload_len);
}

/* ---- ICMP ---- */

int icmp_echo_send(struct net *n, const uint8_t *dst_mac, uint32_t dst, uint8_t type,
                   uint16_t id, uint16_t seq, const void *data, unsigned len)
{
    uint8_t *m = n->tx + ETH_HLEN + IP_HLEN;

    if (len > ETH_FRAME_MAX - ETH_HLEN - IP_HLEN - ICMP_HLEN)
        len = ETH_FRAME_MAX - ETH_HLEN - IP_HLEN - ICMP_HLEN;
    m[0] = type;
    m[1] = 0;
    put16(m + 2, 0);
    put16(m + 4, id);
    put16(m + 6, seq);
    memmove(m + ICMP_HLEN, data, len);
    put16(m + 2, csum_fold(csum_add(0, m, ICMP_HLEN + len)));
    return ip_send(n, dst_mac, n->ip, dst, IPPROTO_ICMP, ICMP_HLEN + len);
}

/* The reply to the echo request in n->rx (an IP header without options at h, `total`
 * bytes of IP), built over the request and sent from there: the same bytes
 * icmp_echo_send would send, without copying the data or summing it again. The ICMP
 * checksum is updated for the changed type word (RFC 1624, eqn. 3); a result of 0 is
 * also what all-zero data sums to, where a full sum gives 0xffff, so that one case is
 * summed in full. */
static void echo_reply_in_place(struct net *n, uint8_t *h, unsigned total)
{
    uint8_t *m = h + IP_HLEN;
    uint16_t check = csum_fold((uint16_t)~get16(m + 2) + (uint16_t)~get16(m));

    m[0] = ICMP_ECHOREPLY;
    m[1] = 0;
    if (!check) {
        put16(m + 2, 0);
        check = csum_fold(csum_add(0, m, total - IP_HLEN));
    }
    put16(m + 2, check);
    h[1] = 0;
    put16(h + 4, n->ip_id++);
    put16(h + 6, 0x4000);          /* don't fragment */
    h[8] = IP_DEFAULT_TTL;
    put16(h + 10, 0);
    put32(h + 12, n->ip);
    put32(h + 16, n->ip_src);
    put16(h + 10, csum_fold(csum_add(0, h, IP_HLEN)));
    mac_copy(n->rx, n->rx + ETH_ALEN);
    mac_copy(n->rx + ETH_ALEN, n->mac);
    /* the requester's address lives on in the ARP cache, which just learned it */
    n->eth_src = arp_lookup(n, n->ip_src);
    ne2k_send(&n->nic, n->rx, ETH_HLEN + total);
}

static enum net_kind icmp_input(struct net *n, uint8_t *h, unsigned hlen, unsigned total)
{
    const uint8_t *m = h + hlen;
    unsigned len = total - hlen;

    if (len < ICMP_HLEN || csum_fold(csum_add(0, m, len)) != 0)
        return NET_BAD;
    n->icmp_id = get16(m + 4);
    n->icmp_seq = get16(m + 6);
    n->payload = m + ICMP_HLEN;
    n->payload_len = len - ICMP_HLEN;
    if (m[0] == ICMP_ECHOREPLY)
        return NET_ECHO_REPLY;
    if (m[0] != ICMP_ECHO || n->ip_dst != n->ip)
        return NET_IP_OTHER;
    if (n->answer_ping) {
        arp_learn(n, n->ip_src, n->eth_src);
        if (hlen == IP_HLEN)
            echo_reply_in_place(n, h, total);
        else
            icmp_echo_send(n, n->eth_src, n->ip_src, ICMP_ECHOREPLY, n->icmp_id, n->icmp_seq,
                           n->payload, n->payload_len);
        n->echo_replies++;
    }
    return NET_ECHO_REQUEST;
}

/* ---- UDP ---- */

static uint32_t udp_pseudo_sum(uint32_t src, uint32_t dst, unsigned udp_len)
{
    uint8_t ph[12];

    put32(ph, src);
    put32(ph + 4, dst);
    ph[8] = 0;
    ph[9] = IPPROTO_UDP;
    put16(ph + 10, (uint16_t)udp_len);
    return csum_add(0, ph, sizeof(ph));
}

int udp_send(struct net *n, const uint8_t *dst_mac, uint32_t src, uint32_t dst, uint16_t sport,
             uint16_t dport, const void *data, unsigned len)
{
    uint8_t *u = n->tx + ETH_HLEN + IP_HLEN;
    uint16_t sum;

    if (len > ETH_FRAME_MAX - ETH_HLEN - IP_HLEN - UDP_HLEN)
        len = ETH_FRAME_MAX - ETH_HLEN - IP_HLEN - UDP_HLEN;
    put16(u, sport);
    put16(u + 2, dport);
    put16(u + 4, (uint16_t)(UDP_HLEN + len));
    put16(u + 6, 0);
    memmove(u + UDP_HLEN, data, len);
    sum = csum_fold(csum_add(udp_pseudo_sum(src, dst, UDP_HLEN + len), u, UDP_HLEN + len));
    put16(u + 6, sum ? sum : 0xffff);    /* 0 would mean "no checksum" */
    return ip_send(n, dst_mac, src, dst, IPPROTO_UDP, UDP_HLEN + len);
}

static enum net_kind udp_input(struct net *n, const uint8_t *u, unsigned len)
{
    unsigned ulen;

    if (len < UDP_HLEN)
        return NET_BAD;
    ulen = get16(u + 4);
    if (ulen < UDP_HLEN || ulen > len)
        return NET_BAD;
    if (get16(u + 6) &&
        csum_fold(csum_add(udp_pseudo_sum(n->ip_src, n->ip_dst, ulen), u, ulen)) != 0)
        return NET_BAD;
    n->sport = get16(u);
    n->dport = get16(u + 2);
    n->payload = u + UDP_HLEN;
    n->payload_len = ulen - UDP_HLEN;
    return NET_UDP;
}

static enum net_kind ip_input(struct net *n, uint8_t *h, unsigned len)
{
    unsigned hlen, total;

    if (len < IP_HLEN || (h[0] >> 4) != 4)
        return NET_BAD;
    hlen = (h[0] & 0x0f) * 4u;
    total = get16(h + 2);
    if (hlen < IP_HLEN || total < hlen || total > len || csum_fold(csum_add(0, h, hlen)) != 0)
        return NET_BAD;
    n->ip_ttl = h[8];
    n->ip_proto = h[9];
    n->ip_src = get32(h + 12);
    n->ip_dst = get32(h + 16);
    /* fragments are not reassembled: MF set or a fragment offset */
    if (get16(h + 6) & 0x3fff)
        return NET_IP_OTHER;
    /* an unconfigured stack (DHCP) takes everything */
    if (n->ip && n->ip_dst != n->ip && n->ip_dst != IP_BROADCAST)
        return NET_IP_OTHER;
    if (n->ip_proto == IPPROTO_ICMP)
        return icmp_input(n, h, hlen, total);
    if (n->ip_proto == IPPROTO_UDP)
        return udp_input(n, h + hlen, total - hlen);
    return NET_IP_OTHER;
}

/* Says what the frame of `len` bytes in n->rx is, answering ARP and ping. */
static enum net_kind net_input(struct net *n, int len)
{
    enum net_kind kind;

    n->rx_len = (unsigned)len;
    n->payload = 0;
    n->payload_len = 0;
    if (len < ETH_HLEN) {
        n->rx_bad++;
        return NET_BAD;
    }
    n->eth_src = n->rx + ETH_ALEN;
    n->ethertype = get16(n->rx + 12);
    if (mac_equal(n->eth_src, n->mac))
        return NET_OWN;
    if (n->ethertype == ETHERTYPE_ARP)
        kind = arp_input(n, n->rx + ETH_HLEN, n->rx_len - ETH_HLEN);
    else if (n->ethertype == ETHERTYPE_IP)
        kind = ip_input(n, n->rx + ETH_HLEN, n->rx_len - ETH_HLEN);
    else {
        n->payload = n->rx + ETH_HLEN;
        n->payload_len = n->rx_len - ETH_HLEN;
        kind = NET_ETH;
    }
    if (kind == NET_BAD)
        n->rx_bad++;
    return kind;
}

enum net_kind net_recv(struct net *n, uint64_t deadline)
{
    int len = ne2k_recv_until(&n->nic, n->rx, sizeof(n->rx), deadline);

    return len ? net_input(n, len) : NET_TIMEOUT;
}

enum net_kind net_recv_within(struct net *n, uint32_t ms)
{
    int len = ne2k_recv_within(&n->nic, n->rx, sizeof(n->rx), ms);

    return len ? net_input(n, len) : NET_TIMEOUT;
}

void net_linger(struct net *n, uint32_t ms)
{
    uint64_t deadline = deadline_in_ms(ms);

    while (net_recv(n, deadline) != NET_TIMEOUT)
        ;
}
