/* hello-eth.c - two machines greet each other with raw Ethernet frames.
 *
 * -append "[count=3] [expect=COUNT] [type=0x88b5] [dst=ff:ff:ff:ff:ff:ff]
 *          [interval=100] [timeout=5]"
 * Sends `count` (1..31) frames of EtherType `type`, `interval` ms apart, each
 * carrying "hello N from MAC", and prints every frame it receives.  Exit 0
 * once all were sent and `expect` distinct greetings (sender, N) arrived; 1 if
 * `timeout` virtual seconds pass without the next one.
 *
 * Frames sent before the other machine is connected are lost, so when a
 * new peer is heard from for the first time, the series starts over from 1
 * (duplicates are printed but counted once). */
#include "net.h"
#include "rt.h"

#define MAX_PEERS 8
#define LINGER_MS 100    /* time for the last frame to leave the host before power-off */
#define MAX_COUNT 31

static struct net n;

/* who greeted us, and which greeting numbers each sent (bit N) */
static struct peer {
    uint8_t mac[ETH_ALEN];
    uint32_t seen;
} peers[MAX_PEERS];
static unsigned npeers;

/* Returns 1 if the frame is a greeting not seen before; restarts our
 * series (*next = 1) when its sender is new. */
static int note_greeting(uint32_t *next)
{
    const char *p = (const char *)n.payload;
    uint32_t num = 0;
    struct peer *peer = 0;
    char m[18];

    if (n.payload_len < 7 || strncmp(p, "hello ", 6) != 0)
        return 0;
    for (p += 6; *p >= '0' && *p <= '9' && num <= MAX_COUNT; p++)
        num = num * 10 + (uint32_t)(*p - '0');
    if (num < 1 || num > MAX_COUNT)
        return 0;
    for (unsigned i = 0; i < npeers; i++)
        if (mac_equal(peers[i].mac, n.eth_src))
            peer = &peers[i];
    if (!peer) {
        if (npeers == MAX_PEERS)
            return 0;
        peer = &peers[npeers++];
        mac_copy(peer->mac, n.eth_src);
        peer->seen = 0;
        if (*next > 1) {
            printf("hello-eth: new peer %s, greeting again from 1\n", mac_str(peer->mac, m));
            *next = 1;
        }
    }
    if (peer->seen & (1u << num))
        return 0;
    peer->seen |= 1u << num;
    return 1;
}

static void print_frame(void)
{
    char m[18];
    unsigned shown = n.payload_len < 48 ? n.payload_len : 48;
    int text = 1;

    printf("hello-eth: received %u bytes from %s type 0x%04x: ", n.rx_len,
           mac_str(n.eth_src, m), n.ethertype);
    for (unsigned i = 0; i < shown && n.payload[i]; i++)
        if (n.payload[i] < 0x20 || n.payload[i] > 0x7e)
            text = 0;
    if (text) {
        printf("\"");
        for (unsigned i = 0; i < shown && n.payload[i]; i++)
            putchar_((char)n.payload[i]);
        printf("\"\n");
    } else {
        for (unsigned i = 0; i < shown && i < 16; i++)
            printf("%02x", n.payload[i]);
        printf("...\n");
    }
}

int main(void)
{
    static const char *const known[] = {"count", "expect", "type", "dst", "interval",
                                        NET_COMMON_ARGS, 0};
    uint8_t dst[ETH_ALEN];
    uint32_t count, expect, type, interval_ms, timeout_ms, next = 1, greeted = 0;
    uint64_t next_send;
    char m[18], d[18];

    arg_check("hello-eth", known);
    count = arg_uint("count", 3);
    if (count > MAX_COUNT)
        count = MAX_COUNT;
    expect = arg_uint("expect", count);
    type = arg_uint("type", 0x88b5);
    interval_ms = arg_uint("interval", 100);
    timeout_ms = arg_ms("timeout", 5 * 1000);
    if (!arg_mac("dst", dst))
        mac_copy(dst, eth_broadcast);
    net_open(&n, "hello-eth");
    printf("hello-eth: sending %u frames of type 0x%04x to %s, expecting %u\n", count, type,
           mac_str(dst, d), expect);

    next_send = time_now();
    uint64_t idle_deadline = deadline_in_ms(timeout_ms);
    while (next <= count || greeted < expect) {
        if (next <= count && time_now() >= next_send) {
            char *p = (char *)n.tx + ETH_HLEN;
            int len = snprintf(p, 200, "hello %u from %s", next, mac_str(n.mac, m));
            eth_send(&n, dst, (uint16_t)type, (unsigned)len + 1);
            next++;
            printf("hello-eth: sent \"%s\"\n", p);
            next_send = time_now() + (uint64_t)interval_ms * TICKS_PER_MS;
            if (next > count && greeted >= expect)
                break;
        }
        uint64_t wake = next <= count && next_send < idle_deadline ? next_send : idle_deadline;
        enum net_kind k = net_recv(&n, wake);
        if (k == NET_TIMEOUT) {
            if (time_now() >= idle_deadline) {
                printf("hello-eth: timeout: sent %u/%u, received %u/%u greetings\n", next - 1,
                       count, greeted, expect);
                return 1;
            }
            continue;
        }
        if (k == NET_OWN)
            continue;
        idle_deadline = deadline_in_ms(timeout_ms);
        if (k == NET_ETH)
            print_frame();
        else
            printf("hello-eth: received %u bytes from %s type 0x%04x\n", n.rx_len,
                   mac_str(n.eth_src, m), n.ethertype);
        if (k == NET_ETH && n.ethertype == type && note_greeting(&next))
            greeted++;
    }
    printf("hello-eth: done, sent %u, received %u greetings\n", count, greeted);
    delay_us(LINGER_MS * 1000);
    return 0;
}
