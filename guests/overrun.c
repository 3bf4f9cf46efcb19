/* overrun.c - the NE2000 when things go wrong: a slow receiver that survives ring
 * overruns, and the chip's internal loopback and tally counters.
 *
 * -append "mode=sink [type=0x88b6] [delay=0] [timeout=2]"
 *   receives numbered frames (flood's format: magic, seq, count, pattern),
 *   spending `delay` microseconds per frame; on a lossless=off NIC the ring
 *   overflows and the driver recovers (lib8390's ei_rx_overrun).  Frames may be
 *   missing (each gap is printed), but those that arrive must come in increasing
 *   order and intact.
 *   After `timeout` idle virtual seconds it prints what it got, the overruns
 *   and the tally counters, and exits 0 if nothing was out of order or corrupt.
 * -append "mode=loopback [count=8]"
 *   transmits `count` frames to itself in internal loopback (TCR LB=01) and
 *   reads each back from the ring; then, with the CRC inhibited, one frame with
 *   a good software FCS (stored) and one with a bad FCS (not stored, counted in
 *   CNTR1).  Exit 0 if every step behaved as the DP8390 datasheet says. */
#include "net.h"
#include "rt.h"

#define FLOOD_MAGIC 0x464c4f44u    /* "FLOD" */
#define LOOP_TYPE 0x88b5
#define MAX_GAPS_SHOWN 100

static struct net n;

static int intact(const uint8_t *p, unsigned len)
{
    for (unsigned i = 12; i < len; i++)
        if (p[i] != (uint8_t)i)
            return 0;
    return 1;
}

static int do_sink(uint32_t type, uint32_t timeout_ms)
{
    uint32_t delay = arg_uint("delay", 0), got = 0, disorder = 0, corrupt = 0, last = 0;
    uint32_t gaps = 0;

    printf("overrun: sinking frames of type 0x%04x%s\n", type, delay ? " slowly" : "");
    for (;;) {
        enum net_kind k = net_recv_within(&n, timeout_ms);
        if (k == NET_TIMEOUT)
            break;
        if (k != NET_ETH || n.ethertype != type || n.payload_len < 12 ||
            get32(n.payload) != FLOOD_MAGIC)
            continue;
        uint32_t seq = get32(n.payload + 4);
        got++;
        if (seq <= last)
            disorder++;
        else if (seq > last + 1 && gaps++ < MAX_GAPS_SHOWN)
            printf("overrun: missing %u..%u\n", last + 1, seq - 1);
        last = seq;
        if (!intact(n.payload, n.payload_len))
            corrupt++;
        if (delay)
            delay_us(delay);
    }
    ne2k_read_counters(&n.nic);
    printf("overrun: received %u frames, last seq %u, %u out of order, %u corrupt\n", got,
           last, disorder, corrupt);
    printf("overrun: %u overruns, %u resends, tally: %u alignment, %u crc, %u missed\n",
           n.nic.rx_overruns, n.nic.tx_resends, n.nic.rx_frame_errors, n.nic.rx_crc_errors,
           n.nic.rx_missed);
    return disorder || corrupt ? 1 : 0;
}

static uint32_t crc32(const uint8_t *p, unsigned len)
{
    uint32_t crc = 0xffffffffu;

    while (len--) {
        crc ^= *p++;
        for (int bit = 0; bit < 8; bit++)
            crc = crc >> 1 ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

/* One frame to ourselves in loopback; 1 if it came back as sent (want = 1) or
 * did not come back (want = 0). */
static int loop_once(uint8_t *frame, unsigned len, uint8_t tcr, unsigned stored_len, int want)
{
    static uint8_t back[1536];

    if (ne2k_send_raw(&n.nic, frame, len, tcr) < 0) {
        printf("overrun: loopback transmit timed out\n");
        return 0;
    }
    int got = ne2k_recv(&n.nic, back, sizeof(back));
    if (!want)
        return got == 0;
    return got == (int)stored_len && memcmp(back, frame, stored_len) == 0;
}

static int do_loopback(uint32_t count)
{
    static uint8_t frame[128];
    int ok = 1;

    mac_copy(frame, n.mac);
    mac_copy(frame + ETH_ALEN, n.mac);
    put16(frame + 2 * ETH_ALEN, LOOP_TYPE);
    for (uint32_t i = 0; i < count; i++) {
        for (unsigned j = ETH_HLEN; j < 100; j++)
            frame[j] = (uint8_t)(i + j);
        if (!loop_once(frame, 100, E8390_TXOFF, 100, 1)) {
            printf("overrun: loopback frame %u did not come back intact\n", i);
            ok = 0;
        }
    }
    /* CRC inhibited: the receiver checks the FCS we append ourselves */
    uint32_t fcs = crc32(frame, 100);
    for (int i = 0; i < 4; i++)
        frame[100 + i] = (uint8_t)(fcs >> (8 * i));
    if (!loop_once(frame, 104, E8390_TXOFF | ENTCR_CRC, 100, 1)) {
        printf("overrun: good software FCS: frame not stored\n");
        ok = 0;
    }
    frame[100] ^= 0xff;
    if (!loop_once(frame, 104, E8390_TXOFF | ENTCR_CRC, 100, 0)) {
        printf("overrun: bad software FCS: frame stored\n");
        ok = 0;
    }
    ne2k_read_counters(&n.nic);
    printf("overrun: loopback %u frames, tally: %u crc, %u missed\n", count,
           n.nic.rx_crc_errors, n.nic.rx_missed);
    if (n.nic.rx_crc_errors != 1) {
        printf("overrun: CNTR1 should have counted one CRC error\n");
        ok = 0;
    }
    printf("overrun: loopback %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

int main(void)
{
    static const char *const known[] = {"mode", "type", "delay", "count", NET_COMMON_ARGS, 0};
    const char *mode;

    arg_check("overrun", known);
    mode = arg_str("mode", "");
    if (strcmp(mode, "sink") && strcmp(mode, "loopback")) {
        printf("overrun: usage: mode=sink [type=N] [delay=US] [timeout=S] | "
               "mode=loopback [count=N]\n");
        return 2;
    }
    net_open(&n, "overrun");
    if (!strcmp(mode, "sink"))
        return do_sink(arg_uint("type", 0x88b6), arg_ms("timeout", 2 * 1000));
    return do_loopback(arg_uint("count", 8));
}
