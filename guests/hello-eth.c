/* hello-eth.c - two machines greet each other with raw Ethernet frames.
 *
 * -append "[count=3] [expect=COUNT] [type=0x88b5] [dst=ff:ff:ff:ff:ff:ff]
 *          [interval=100] [timeout=5]"
 * Sends `count` frames of EtherType `type`, `interval` ms apart, each
 * carrying "hello N from MAC", and prints every frame it receives.  Exit 0
 * once all were sent and `expect` greetings (frames of `type`) arrived; 1 if
 * `timeout` virtual seconds pass without the next one. */
#include "net.h"
#include "rt.h"

static struct net n;

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
    uint32_t count, expect, type, interval_ms, timeout_ms, sent = 0, greeted = 0;
    uint64_t next_send;
    char m[18], d[18];

    arg_check("hello-eth", known);
    count = arg_uint("count", 3);
    expect = arg_uint("expect", count);
    type = arg_uint("type", 0x88b5);
    interval_ms = arg_uint("interval", 100);
    timeout_ms = arg_uint("timeout", 5) * 1000;
    if (!arg_mac("dst", dst))
        memcpy(dst, eth_broadcast, ETH_ALEN);
    net_open(&n, "hello-eth");
    printf("hello-eth: sending %u frames of type 0x%04x to %s, expecting %u\n", count, type,
           mac_str(dst, d), expect);

    next_send = time_now();
    uint64_t idle_deadline = deadline_in_ms(timeout_ms);
    while (sent < count || greeted < expect) {
        if (sent < count && time_now() >= next_send) {
            char *p = (char *)n.tx + ETH_HLEN;
            int len = snprintf(p, 200, "hello %u from %s", sent + 1, mac_str(n.mac, m));
            eth_send(&n, dst, (uint16_t)type, (unsigned)len + 1);
            sent++;
            printf("hello-eth: sent \"%s\"\n", p);
            next_send = time_now() + (uint64_t)interval_ms * TICKS_PER_MS;
        }
        uint64_t wake = sent < count && next_send < idle_deadline ? next_send : idle_deadline;
        enum net_kind k = net_recv(&n, wake);
        if (k == NET_TIMEOUT) {
            if (time_now() >= idle_deadline) {
                printf("hello-eth: timeout: sent %u/%u, received %u/%u greetings\n", sent, count,
                       greeted, expect);
                return 1;
            }
            continue;
        }
        idle_deadline = deadline_in_ms(timeout_ms);
        if (k == NET_ETH)
            print_frame();
        else
            printf("hello-eth: received %u bytes from %s type 0x%04x\n", n.rx_len,
                   mac_str(n.eth_src, m), n.ethertype);
        if (k == NET_ETH && n.ethertype == type)
            greeted++;
    }
    printf("hello-eth: done, sent %u, received %u greetings\n", sent, greeted);
    return 0;
}
