/* saw.c - a stop-and-wait transfer over UDP: the sender sends `blocks` blocks one at a
 * time and resends a block until the receiver acknowledges it; the receiver hands each
 * block on (prints it) once, in order.  The example of faults Hypothesis can shrink
 * (tests/examples/test_stop_and_wait.py).
 *
 * -append "mode=send ip=10.0.0.1 peer=10.0.0.2 [peer_mac=M] [blocks=4] [rto_ms=50] [tries=20]
 *          [bug=...]"
 * -append "mode=recv ip=10.0.0.2 [blocks=4] [timeout_ms=400] [bug=...]"
 *
 * Packets (UDP port 9000 both ways): DATA 'D' seq text...; ACK 'A' seq.  The sender finds
 * the receiver's MAC with ARP unless peer_mac= gives it (ARP has no checksum: a corrupted
 * reply would send every block to a wrong address; the receiver answers the frame's
 * source address, so it needs no ARP).
 * The sender exits 0 when every block is acknowledged, 1 when a block went unanswered
 * `tries` times.  The receiver prints "saw: block SEQ: TEXT" for each block it hands on,
 * re-acknowledges a repeated block without handing it on again, and exits after
 * `timeout` of silence: 0 if it has every block, 1 if not.
 *
 * bug= switches on a classic mistake:
 *   nodup - the receiver has no duplicate detection: every DATA it gets is handed on;
 *   rearm - the sender's retransmit timer is not re-armed after its first expiry: a
 *           block whose retransmission is lost too waits for ever. */
#include "net.h"
#include "rt.h"

#define SAW_PORT 9000
#define SAW_DATA 'D'
#define SAW_ACK 'A'
#define TEXT_MAX 32

static struct net n;
static uint8_t pkt[2 + TEXT_MAX];

static unsigned block_text(uint32_t seq, char *out)
{
    return (unsigned)snprintf(out, TEXT_MAX, "block %u of the transfer", seq);
}

static int sender(uint32_t peer, uint32_t blocks, uint32_t rto_ms, uint32_t tries,
                  int bug_rearm)
{
    uint8_t peer_mac[ETH_ALEN];
    uint32_t resent = 0;

    if (!arg_mac("peer_mac", peer_mac)) {
        const uint8_t *mac = arp_resolve(&n, peer, deadline_in_ms(rto_ms * tries), rto_ms);
        if (!mac) {
            printf("saw: no ARP answer from the receiver\n");
            return 1;
        }
        mac_copy(peer_mac, mac);
    }
    for (uint32_t seq = 0; seq < blocks; seq++) {
        unsigned len = block_text(seq, (char *)pkt + 2);
        uint32_t sent = 1;
        uint64_t deadline = deadline_in_ms(rto_ms);

        pkt[0] = SAW_DATA;
        pkt[1] = (uint8_t)seq;
        udp_send(&n, peer_mac, n.ip, peer, SAW_PORT, SAW_PORT, pkt, 2 + len);
        for (;;) {
            enum net_kind k = net_recv(&n, deadline);
            if (k == NET_UDP && n.dport == SAW_PORT && n.payload_len == 2 &&
                n.payload[0] == SAW_ACK && n.payload[1] == (uint8_t)seq)
                break;
            if (k != NET_TIMEOUT)
                continue;
            if (sent == tries) {
                printf("saw: block %u unacknowledged after %u tries; giving up\n", seq, sent);
                return 1;
            }
            udp_send(&n, peer_mac, n.ip, peer, SAW_PORT, SAW_PORT, pkt, 2 + len);
            sent++;
            resent++;
            /* the bug: the timer that just fired is never armed again */
            deadline = bug_rearm ? NO_DEADLINE : deadline_in_ms(rto_ms);
        }
    }
    printf("saw: sent %u blocks, %u retransmissions\n", blocks, resent);
    return 0;
}

static int receiver(uint32_t blocks, uint32_t timeout_ms, int bug_nodup)
{
    uint32_t expected = 0;
    char text[TEXT_MAX + 1];

    for (;;) {
        enum net_kind k = net_recv_within(&n, timeout_ms);
        if (k == NET_TIMEOUT) {
            printf("saw: received %u of %u blocks\n", expected, blocks);
            return expected == blocks ? 0 : 1;
        }
        if (k != NET_UDP || n.dport != SAW_PORT || n.payload_len < 2 ||
            n.payload[0] != SAW_DATA)
            continue;
        uint8_t seq = n.payload[1];
        unsigned len = n.payload_len - 2;
        if (bug_nodup || seq == (uint8_t)expected) {
            if (len > TEXT_MAX)
                len = TEXT_MAX;
            for (unsigned i = 0; i < len; i++) {
                uint8_t c = n.payload[2 + i];
                text[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
            }
            text[len] = 0;
            printf("saw: block %u: %s\n", seq, text);
            expected++;
        } else if (seq != (uint8_t)(expected - 1)) {
            continue; /* neither the next block nor a repeat of the last: not ours to ack */
        }
        uint8_t mac[ETH_ALEN];
        uint32_t src = n.ip_src;
        mac_copy(mac, n.eth_src);
        pkt[0] = SAW_ACK;
        pkt[1] = seq;
        udp_send(&n, mac, n.ip, src, SAW_PORT, SAW_PORT, pkt, 2);
    }
}

int main(void)
{
    static const char *const known[] = {"mode", "ip", "peer", "peer_mac", "blocks", "rto_ms", "tries", "bug",
                                        NET_COMMON_ARGS, 0};
    const char *mode = arg_str("mode", ""), *bug = arg_str("bug", "none");
    uint32_t ip, peer = 0;
    int sending = !strcmp(mode, "send");

    arg_check("saw", known);
    if (!arg_ip("ip", &ip) || (!sending && strcmp(mode, "recv")) ||
        (sending && !arg_ip("peer", &peer)) ||
        (strcmp(bug, "none") && strcmp(bug, "nodup") && strcmp(bug, "rearm"))) {
        printf("saw: usage: mode=send ip=A.B.C.D peer=A.B.C.D | mode=recv ip=A.B.C.D "
               "[blocks=N] [rto_ms=MS] [tries=N] [timeout_ms=MS] [bug=none|nodup|rearm]\n");
        return 2;
    }
    uint32_t blocks = arg_uint("blocks", 4);
    net_open(&n, "saw");
    n.ip = ip;
    if (sending)
        return sender(peer, blocks, arg_uint("rto_ms", 50), arg_uint("tries", 20),
                      !strcmp(bug, "rearm"));
    return receiver(blocks, arg_ms("timeout", 400), !strcmp(bug, "nodup"));
}
