/* echo.c - returns every received frame to its sender.
 *
 * -append "[count=0] [timeout=0] [verbose=0]"
 * Swaps the MAC addresses (the source becomes our own) and transmits the
 * frame back unchanged otherwise.  count=N: exit 0 after N frames; timeout=S:
 * exit after S idle virtual seconds (status 1 if count frames were expected);
 * verbose=1: a console line per frame.  That line is off by default: at 115200
 * baud a real UART needs 5 ms for it, and even emulated its printf costs more
 * instructions than the echo itself, so it would set the echo rate. */
#include "net.h"
#include "rt.h"

/* time for the last frame to leave the host before power-off */
#define LINGER_MS 100

static struct net n;

int main(void)
{
    static const char *const known[] = {"count", "verbose", NET_COMMON_ARGS, 0};
    uint32_t count, timeout_ms, verbose, echoed = 0;
    char m[18];

    arg_check("echo", known);
    count = arg_uint("count", 0);
    timeout_ms = arg_ms("timeout", 0);
    verbose = arg_uint("verbose", 0);
    net_open(&n, "echo");
    printf("echo: returning every frame to its sender\n");

    for (;;) {
        int len = ne2k_recv_within(&n.nic, n.rx, sizeof(n.rx),
                                   timeout_ms ? timeout_ms : FOREVER_MS);
        if (!len) {
            printf("echo: idle for %u.%03u s, %u frames returned\n",
                   timeout_ms / 1000, timeout_ms % 1000, echoed);
            return count && echoed < count ? 1 : 0;
        }
        /* never bounce our own frames (a multicast socket loops them back) */
        if (len < ETH_HLEN || mac_equal(n.rx + ETH_ALEN, n.mac))
            continue;
        /* in place: the sender's address becomes the destination */
        mac_copy(n.rx, n.rx + ETH_ALEN);
        mac_copy(n.rx + ETH_ALEN, n.mac);
        ne2k_send(&n.nic, n.rx, (unsigned)len);
        echoed++;
        if (verbose)
            printf("echo: %u bytes type 0x%04x from %s returned\n", len, get16(n.rx + 12),
                   mac_str(n.rx, m));
        if (count && echoed >= count) {
            printf("echo: %u frames returned, done\n", echoed);
            delay_us(LINGER_MS * 1000);
            return 0;
        }
    }
}
