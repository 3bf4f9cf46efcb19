/* net.h - a tiny network stack over the NE2000 driver: Ethernet, ARP (with a
 * small cache), IPv4 (no fragments), ICMP echo, UDP.  Addresses are kept in
 * host byte order in variables and converted when frames are built. */
#ifndef TOYNIC_NET_H
#define TOYNIC_NET_H

#include <stdint.h>

#include "ne2000.h"

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETHERTYPE_IP 0x0800
#define ETHERTYPE_ARP 0x0806
#define IPPROTO_ICMP 1
#define IPPROTO_UDP 17
#define IP_HLEN 20
#define UDP_HLEN 8
#define ICMP_HLEN 8
#define IP_BROADCAST 0xFFFFFFFFu
#define ARP_CACHE_SIZE 8

extern const uint8_t eth_broadcast[ETH_ALEN];

/* What net_recv found in the frame it just read. */
enum net_kind {
    NET_TIMEOUT = 0,       /* nothing arrived before the deadline */
    NET_ETH,               /* an Ethernet frame of another type: n->ethertype */
    NET_ARP,               /* ARP, already handled (answered / learned) */
    NET_ECHO_REQUEST,      /* ICMP echo request to us, already answered if answer_ping */
    NET_ECHO_REPLY,        /* ICMP echo reply: n->icmp_id, n->icmp_seq */
    NET_UDP,               /* UDP to us: n->sport, n->dport, n->payload */
    NET_IP_OTHER,          /* other IPv4, or not for us */
    NET_BAD,               /* malformed (bad checksum, truncated); counted */
    NET_OWN,               /* our own frame looped back (multicast sockets); ignored */
};

struct arp_entry {
    uint32_t ip;
    uint8_t mac[ETH_ALEN];
    uint8_t valid;
};

struct net {
    struct ne2k nic;
    uint8_t mac[ETH_ALEN];
    uint32_t ip;                 /* 0 until configured (then any IPv4 is taken as ours) */
    uint8_t answer_ping;         /* answer ICMP echo requests */
    uint16_t ip_id;
    struct arp_entry arp[ARP_CACHE_SIZE];
    unsigned arp_next;

    /* the frame net_recv read last, and views into it */
    uint8_t rx[1536];
    unsigned rx_len;
    const uint8_t *eth_src;
    uint16_t ethertype;
    uint32_t ip_src, ip_dst;
    uint8_t ip_proto, ip_ttl;
    uint16_t icmp_id, icmp_seq;
    uint16_t sport, dport;
    const uint8_t *payload;      /* Ethernet payload (NET_ETH), UDP or ICMP echo data */
    unsigned payload_len;

    uint8_t tx[1536];

    uint32_t rx_bad, arp_replies, echo_replies;
};

/* Probes the NE2000 (`iobase=`, `irq=`, `poll=1`, `promisc=1` from -append),
 * starts it and prints one line about it.  Exits 3 if there is no NIC. */
void net_open(struct net *n, const char *prog);
/* Waits for the next frame until deadline, handles ARP and (if answer_ping)
 * ICMP echo itself, and says what the frame was. */
enum net_kind net_recv(struct net *n, uint64_t deadline);
/* net_recv with an idle timeout: gives up `ms` after it finds nothing to read
 * (FOREVER_MS: never; ne2k_recv_within). */
enum net_kind net_recv_within(struct net *n, uint32_t ms);

/* Keeps answering ARP and ping for ms of virtual time, so the last frames a
 * program sent can leave the host before the machine powers off. */
void net_linger(struct net *n, uint32_t ms);

/* Sends an Ethernet frame whose payload is already at n->tx + ETH_HLEN. */
int eth_send(struct net *n, const uint8_t *dst, uint16_t type, unsigned payload_len);
/* Sends an IPv4 packet whose payload is already at n->tx + ETH_HLEN + IP_HLEN. */
int ip_send(struct net *n, const uint8_t *dst_mac, uint32_t src, uint32_t dst, uint8_t proto,
            unsigned payload_len);
int udp_send(struct net *n, const uint8_t *dst_mac, uint32_t src, uint32_t dst, uint16_t sport,
             uint16_t dport, const void *data, unsigned len);
int icmp_echo_send(struct net *n, const uint8_t *dst_mac, uint32_t dst, uint8_t type,
                   uint16_t id, uint16_t seq, const void *data, unsigned len);

int arp_request(struct net *n, uint32_t ip);
const uint8_t *arp_lookup(struct net *n, uint32_t ip);
/* Resolves ip, asking every `retry_ms`; NULL at the deadline. */
const uint8_t *arp_resolve(struct net *n, uint32_t ip, uint64_t deadline, uint32_t retry_ms);

uint32_t csum_add(uint32_t sum, const void *data, unsigned len);
uint16_t csum_fold(uint32_t sum);

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* MAC addresses are copied and compared inline: on a frame's path, a call to memcpy
 * or memcmp for six bytes costs more than the bytes do. */
static inline void mac_copy(uint8_t *dst, const uint8_t *src)
{
    for (unsigned i = 0; i < ETH_ALEN; i++)
        dst[i] = src[i];
}
static inline int mac_equal(const uint8_t *a, const uint8_t *b)
{
    unsigned diff = 0;

    for (unsigned i = 0; i < ETH_ALEN; i++)
        diff |= (unsigned)(a[i] ^ b[i]);
    return diff == 0;
}

/* "10.0.0.1" / "52:54:00:12:34:56" into a caller's buffer (16 / 18 bytes). */
const char *ip_str(uint32_t ip, char buf[16]);
const char *mac_str(const uint8_t *mac, char buf[18]);

/* -append keys every network program accepts */
#define NET_COMMON_ARGS "iobase", "irq", "poll", "promisc", "timeout", "timeout_ms"

#endif
