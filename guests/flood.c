/* flood.c - a stream of numbered frames, for throughput and lossless-delivery runs.
 *
 * -append "mode=send [size=64] [count=1000] [type=0x88b6] [dst=ff:ff:ff:ff:ff:ff] [gap=0]
 *          [ack=1] [timeout=10]"
 *   sends `count` frames of `size` bytes (60..1514), `gap` microseconds apart,
 *   each carrying its sequence number (from 1), the total count and a pattern;
 *   then (ack=1) stays up to `timeout` virtual seconds for the sink's
 *   acknowledgement, so no frame still queued on the host is lost by powering
 *   off early (no acknowledgement is reported, not an error);
 * -append "mode=sink [count=1000] [type=0x88b6] [delay=0] [timeout=5]"
 *   receives frames of `type`, checks the numbering (and the pattern), spends
 *   `delay` microseconds per frame to be a slow receiver, and prints the total.
 * Sink exit: 0 when `count` frames arrived in order and intact, 1 if `timeout`
 * idle virtual seconds pass first or anything was out of order or corrupt.
 * Either way it then sends a DONE frame (received, out of order, corrupt) to
 * the sender. */
#include "net.h"
#include "rt.h"

#define FLOOD_MAGIC 0x464c4f44u    /* "FLOD" */
#define DONE_MAGIC 0x444f4e45u     /* "DONE": the sink's acknowledgement */
#define LINGER_MS 100
#define PROGRESS_EVERY 5000

static struct net n;

/* payload: magic(4) seq(4) count(4), then the bytes i & 0xff (i = offset in
 * the payload).  The filler does not change between frames, so the sender
 * writes it once and the per-frame cost is the driver's, not the pattern's. */
static void fill_pattern(uint8_t *p, unsigned len)
{
    for (unsigned i = 12; i < len; i++)
        p[i] = (uint8_t)i;
}

static void fill_header(uint8_t *p, uint32_t seq, uint32_t count)
{
    put32(p, FLOOD_MAGIC);
    put32(p + 4, seq);
    put32(p + 8, count);
}

static int check(const uint8_t *p, unsigned len)
{
    /* the reference pattern sits at the same alignment as the frame, so
     * memcmp can compare words */
    static uint8_t store[ETH_FRAME_MAX + 4];
    static int shift = -1;
    uint8_t *pattern = store + ((uintptr_t)p & 3);

    if (shift != (int)((uintptr_t)p & 3)) {
        shift = (int)((uintptr_t)p & 3);
        fill_pattern(pattern, ETH_FRAME_MAX);
    }
    return len <= ETH_FRAME_MAX && memcmp(p + 12, pattern + 12, len - 12) == 0;
}

static int do_send(uint32_t count, uint32_t size, uint32_t type, const uint8_t *dst,
                   uint32_t timeout_ms)
{
    uint32_t gap = arg_uint("gap", 0), failed = 0;
    uint64_t t0;
    char d[18];

    if (size < ETH_ZLEN || size > ETH_FRAME_MAX) {
        printf("flood: size must be 60..1514\n");
        return 2;
    }
    printf("flood: sending %u frames of %u bytes type 0x%04x to %s\n", count, size, type,
           mac_str(dst, d));
    t0 = time_now();
    uint64_t i0 = instret_now();
    fill_pattern(n.tx + ETH_HLEN, size - ETH_HLEN);
    for (uint32_t seq = 1; seq <= count; seq++) {
        fill_header(n.tx + ETH_HLEN, seq, count);
        if (eth_send(&n, dst, (uint16_t)type, size - ETH_HLEN) < 0)
            failed++;
        if (seq % PROGRESS_EVERY == 0)
            printf("flood: sent %u\n", seq);
        if (gap)
            delay_us(gap);
    }
    uint64_t insns = instret_now() - i0;
    printf("flood: sent %u frames of %u bytes in ", count - failed, size);
    print_ms(time_now() - t0);
    printf(" ms virtual, %u instructions/frame, %u transmit timeouts\n",
           count ? (uint32_t)(insns / count) : 0, failed);
    if (arg_uint("ack", 1)) {
        uint64_t deadline = deadline_in_ms(timeout_ms);
        for (;;) {
            enum net_kind k = net_recv(&n, deadline);
            if (k == NET_TIMEOUT) {
                printf("flood: no acknowledgement from a sink\n");
                break;
            }
            if (k == NET_ETH && n.ethertype == type && n.payload_len >= 16 &&
                get32(n.payload) == DONE_MAGIC) {
                printf("flood: sink acknowledged %u frames (%u out of order, %u corrupt)\n",
                       get32(n.payload + 4), get32(n.payload + 8), get32(n.payload + 12));
                break;
            }
        }
    }
    return failed ? 1 : 0;
}

static void send_done(uint32_t type, const uint8_t *to, uint32_t got, uint32_t disorder,
                      uint32_t corrupt)
{
    uint8_t *p = n.tx + ETH_HLEN;

    put32(p, DONE_MAGIC);
    put32(p + 4, got);
    put32(p + 8, disorder);
    put32(p + 12, corrupt);
    eth_send(&n, to, (uint16_t)type, 16);
    delay_us(LINGER_MS * 1000);
}

static int do_sink(uint32_t count, uint32_t type, uint32_t timeout_ms)
{
    uint8_t sender[ETH_ALEN];

    uint32_t delay = arg_uint("delay", 0), got = 0, expected = 1, disorder = 0, corrupt = 0;
    uint64_t t0 = 0, i0 = 0;

    mac_copy(sender, eth_broadcast);
    printf("flood: sinking %u frames of type 0x%04x%s\n", count, type,
           delay ? " slowly" : "");
    while (got < count) {
        enum net_kind k = net_recv_within(&n, timeout_ms);
        if (k == NET_TIMEOUT) {
            printf("flood: timeout: received %u/%u frames, %u out of order, %u corrupt\n", got,
                   count, disorder, corrupt);
            send_done(type, sender, got, disorder, corrupt);
            return 1;
        }
        if (k != NET_ETH || n.ethertype != type || n.payload_len < 12 ||
            get32(n.payload) != FLOOD_MAGIC)
            continue;
        uint32_t seq = get32(n.payload + 4);
        if (!got) {
            t0 = time_now();
            i0 = instret_now();
            mac_copy(sender, n.eth_src);
        }
        got++;
        if (seq != expected) {
            if (disorder < 10)
                printf("flood: frame %u arrived when %u was expected\n", seq, expected);
            disorder++;
        }
        expected = seq + 1;
        if (!check(n.payload, n.payload_len))
            corrupt++;
        if (got % PROGRESS_EVERY == 0)
            printf("flood: received %u\n", got);
        if (delay)
            delay_us(delay);
    }
    uint64_t insns = instret_now() - i0;
    printf("flood: received %u frames, %u out of order, %u corrupt, in ", got, disorder, corrupt);
    print_ms(time_now() - t0);
    printf(" ms virtual, %u instructions/frame\n", (uint32_t)(insns / got));
    send_done(type, sender, got, disorder, corrupt);
    return disorder || corrupt ? 1 : 0;
}

int main(void)
{
    static const char *const known[] = {"mode", "size", "count", "type", "dst", "gap", "delay", "ack",
                                        NET_COMMON_ARGS, 0};
    const char *mode;
    uint8_t dst[ETH_ALEN];
    uint32_t count, type;

    arg_check("flood", known);
    mode = arg_str("mode", "");
    count = arg_uint("count", 1000);
    type = arg_uint("type", 0x88b6);
    if (!arg_mac("dst", dst))
        mac_copy(dst, eth_broadcast);
    if (strcmp(mode, "send") && strcmp(mode, "sink")) {
        printf("flood: usage: mode=send|sink [size=N] [count=N] [gap=US] [delay=US] "
               "[timeout=S|timeout_ms=MS]\n");
        return 2;
    }
    net_open(&n, "flood");
    if (!strcmp(mode, "send"))
        return do_send(count, arg_uint("size", 64), type, dst, arg_ms("timeout", 10 * 1000));
    return do_sink(count, type, arg_ms("timeout", 5 * 1000));
}
