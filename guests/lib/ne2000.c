/* ne2000.c - NE2000 driver: probe, ring, filter, transmit, receive, waiting.
 *
 * The flow follows Linux's ne.c (probe, remote DMA block in/out) and
 * lib8390.c (NS8390_init, ei_start_xmit, ei_receive), but for one thing: a
 * received frame's header and data come in one remote read, not two (see
 * ne2k_recv).  Reads and writes go through the ISA window: port P is the byte
 * at ISA_BASE + P.
 *
 * Waiting is interrupt-driven without a trap handler: mstatus.MIE stays
 * clear, mie enables the external and timer interrupts, and wfi returns when
 * either is pending.  The driver then claims the source at the PLIC,
 * acknowledges the receive bits in ISR and completes the claim; ne2k_recv then
 * reads the ring.  In polled mode (no NIC interrupt) the driver still sleeps in
 * wfi, on the timer alone, between looks at the ring.
 *
 * A receive overrun (ISR.OVW: the ring was full, the chip missed a frame and
 * stopped receiving) is recovered as lib8390.c's ei_rx_overrun does: note a
 * transmit under way, STOP, wait, clear RBCR, internal loopback, START; the
 * frames in the ring are then read as usual, and once it is empty OVW is
 * acknowledged, TCR set back to normal and a transmit the STOP cut off sent
 * again. */
#include "ne2000.h"

#include "rt.h"

#define RESET_TIMEOUT_MS 20
#define TX_TIMEOUT_MS 20
#define RDC_SPINS 100000
#define POLL_US 100
#define OVERRUN_WAIT_US 2000   /* a full transmit time and a guard (NS says 1.6 ms) */
#define RX_FRAME_MAX (ETH_FRAME_MAX + 4)   /* longest frame a ring header counts (FCS in) */

static inline uint8_t inb(const struct ne2k *restrict nic, unsigned reg)
{
    return MMIO8(nic->io + reg);
}
static inline void outb(const struct ne2k *restrict nic, unsigned reg, uint8_t v)
{
    MMIO8(nic->io + reg) = v;
}
static inline uint16_t inw_data(const struct ne2k *restrict nic)
{
    return MMIO16(nic->io + NE_DATAPORT);
}
static inline void outw_data(const struct ne2k *restrict nic, uint16_t v)
{
    MMIO16(nic->io + NE_DATAPORT) = v;
}

/* ---- PLIC routing ---- */

static uint32_t plic_source(const struct ne2k *restrict nic) { return ISA_IRQ_BASE + nic->irq; }

static void plic_enable(uint32_t src)
{
    MMIO32(PLIC_BASE + PLIC_PRIORITY + 4 * src) = 1;
    MMIO32(PLIC_BASE + PLIC_ENABLE + 4 * (src / 32)) |= 1u << (src % 32);
    MMIO32(PLIC_BASE + PLIC_THRESHOLD) = 0;
}

/* ---- remote DMA (ne_get_8390_hdr, ne_block_input / ne_block_output) ---- */

static void remote_setup(struct ne2k *restrict nic, uint16_t addr, uint16_t count, uint8_t dir)
{
    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_START);
    outb(nic, EN0_RCNTLO, count & 0xff);
    outb(nic, EN0_RCNTHI, count >> 8);
    outb(nic, EN0_RSARLO, addr & 0xff);
    outb(nic, EN0_RSARHI, addr >> 8);
    outb(nic, E8390_CMD, dir | E8390_START);
}

/* Reads the next count bytes of the remote DMA under way (word mode).  The
 * chip wraps the remote address from PSTOP back to PSTART by itself, so a frame
 * that wraps around the end of the ring comes out in one piece. */
static void read_data(struct ne2k *restrict nic, void *buf, unsigned count)
{
    uint8_t *p = buf;
    unsigned words = count / 2;

    if (((uintptr_t)p & 1) == 0) {
        /* the usual case: halfword stores, little-endian like the data port */
        uint16_t *w = (uint16_t *)p;
        while (words--)
            *w++ = inw_data(nic);
        p = (uint8_t *)w;
    } else {
        while (words--) {
            uint16_t w = inw_data(nic);
            p[0] = (uint8_t)w;
            p[1] = (uint8_t)(w >> 8);
            p += 2;
        }
    }
    if (count & 1)
        *p = (uint8_t)inw_data(nic);
}

/* Writes count bytes into NIC memory at addr and waits for remote DMA
 * complete (RDC).  Returns 0, or -1 if RDC never came. */
static int block_output(struct ne2k *restrict nic, uint16_t addr, const void *buf, unsigned count)
{
    const uint8_t *p = buf;
    unsigned words = count / 2;

    /* an odd byte count goes out as a whole last word: the data port is 16
     * bits wide */
    outb(nic, EN0_ISR, ENISR_RDC);
    remote_setup(nic, addr, (uint16_t)((count + 1) & ~1u), E8390_RWRITE);
    if (((uintptr_t)p & 1) == 0) {
        const uint16_t *w = (const uint16_t *)p;
        while (words--)
            outw_data(nic, *w++);
        p = (const uint8_t *)w;
    } else {
        for (; words; words--, p += 2)
            outw_data(nic, (uint16_t)(p[0] | p[1] << 8));
    }
    if (count & 1)
        outw_data(nic, p[0]);
    for (int spins = 0; !(inb(nic, EN0_ISR) & ENISR_RDC); spins++)
        if (spins > RDC_SPINS)
            return -1;
    outb(nic, EN0_ISR, ENISR_RDC);
    return 0;
}

/* ---- probe (ne_probe1) ---- */

int ne2k_probe(struct ne2k *restrict nic, uint16_t iobase, uint8_t irq)
{
    uint8_t raw[32];
    uint64_t deadline;
    int wordwide = 1;

    memset(nic, 0, sizeof(*nic));
    nic->iobase = iobase;
    nic->io = ISA_BASE + iobase;
    nic->irq = irq;
    if (inb(nic, E8390_CMD) == 0xff)
        return -1;    /* nothing decodes these ports */

    /* reset: read the reset port, write the value back, wait for ISR.RST */
    outb(nic, NE_RESET, inb(nic, NE_RESET));
    deadline = deadline_in_ms(RESET_TIMEOUT_MS);
    while (!(inb(nic, EN0_ISR) & ENISR_RESET))
        if (time_now() > deadline)
            return -2;
    outb(nic, EN0_ISR, 0xff);

    /* quiet, byte-wide, then read the 32-byte station-address PROM */
    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_STOP);
    outb(nic, EN0_DCFG, NE_DCR_BYTE);
    outb(nic, EN0_RCNTLO, 0);
    outb(nic, EN0_RCNTHI, 0);
    outb(nic, EN0_IMR, 0);
    outb(nic, EN0_ISR, 0xff);
    outb(nic, EN0_RXCR, E8390_RXOFF);
    outb(nic, EN0_TXCR, E8390_TXOFF);
    outb(nic, EN0_RCNTLO, sizeof(raw));
    outb(nic, EN0_RCNTHI, 0);
    outb(nic, EN0_RSARLO, 0);
    outb(nic, EN0_RSARHI, 0);
    outb(nic, E8390_CMD, E8390_RREAD | E8390_START);
    for (unsigned i = 0; i < sizeof(raw); i++)
        raw[i] = MMIO8(nic->io + NE_DATAPORT);
    outb(nic, EN0_ISR, ENISR_RDC);

    /* an 8-bit PROM on a 16-bit card shows every byte twice */
    for (unsigned i = 0; i < sizeof(raw); i += 2)
        if (raw[i] != raw[i + 1])
            wordwide = 0;
    for (unsigned i = 0; i < 16; i++)
        nic->prom[i] = wordwide ? raw[2 * i] : raw[i];
    if (!wordwide || nic->prom[14] != 0x57 || nic->prom[15] != 0x57)
        return -3;
    memcpy(nic->mac, nic->prom, 6);
    return 0;
}

/* ---- start-up (NS8390_init + ei_open) ---- */

void ne2k_open(struct ne2k *restrict nic, uint8_t rcr)
{
    nic->rx_start = NE_RX_START;
    nic->rx_stop = NESM_STOP_PG;

    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_STOP);
    outb(nic, EN0_DCFG, NE_DCR_BYTE | ENDCFG_WTS);
    outb(nic, EN0_RCNTLO, 0);
    outb(nic, EN0_RCNTHI, 0);
    outb(nic, EN0_RXCR, E8390_RXOFF);
    outb(nic, EN0_TXCR, E8390_TXOFF);
    outb(nic, EN0_TPSR, NESM_START_PG);
    outb(nic, EN0_STARTPG, nic->rx_start);
    /* BNRY trails one page behind the next frame to read (CURR = PSTART) */
    outb(nic, EN0_BOUNDARY, nic->rx_stop - 1);
    outb(nic, EN0_STOPPG, nic->rx_stop);
    outb(nic, EN0_ISR, 0xff);
    outb(nic, EN0_IMR, 0);

    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE1 | E8390_STOP);
    for (int i = 0; i < 6; i++)
        outb(nic, EN1_PHYS + i, nic->mac[i]);
    /* all multicast hash buckets open: only used when rcr has AM */
    for (int i = 0; i < 8; i++)
        outb(nic, EN1_MULT + i, 0xff);
    outb(nic, EN1_CURPAG, nic->rx_start);
    nic->curr = nic->rx_start;

    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_START);
    outb(nic, EN0_ISR, 0xff);
    /* only receive events wake us (and full tally counters, which must be
     * emptied); transmit completion is polled */
    outb(nic, EN0_IMR, nic->polled ? 0 : ENISR_RX | ENISR_RX_ERR | ENISR_OVER | ENISR_COUNTERS);
    outb(nic, EN0_TXCR, E8390_TXCONFIG);
    outb(nic, EN0_RXCR, rcr);

    csr_clear(mstatus, MSTATUS_MIE);
    if (!nic->polled) {
        plic_enable(plic_source(nic));
        csr_set(mie, MIE_MEIE | MIE_MTIE);
    } else {
        csr_set(mie, MIE_MTIE);
    }
}

/* ---- receive overrun (ei_rx_overrun), tally counters (ei_get_stats) ---- */

static uint8_t read_curr(struct ne2k *restrict nic);

void ne2k_read_counters(struct ne2k *restrict nic)
{
    nic->rx_frame_errors += inb(nic, EN0_COUNTER0);
    nic->rx_crc_errors += inb(nic, EN0_COUNTER1);
    nic->rx_missed += inb(nic, EN0_COUNTER2);
}

/* The first half of the recovery, up to the restart in loopback: the chip no
 * longer takes frames from the wire while the driver drains the ring. */
static void rx_overrun_start(struct ne2k *restrict nic)
{
    uint8_t was_txing = inb(nic, E8390_CMD) & E8390_TRANS;

    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_STOP);
    nic->rx_overruns++;
    delay_us(OVERRUN_WAIT_US);
    outb(nic, EN0_RCNTLO, 0);
    outb(nic, EN0_RCNTHI, 0);
    /* a transmit was cut off if it neither completed nor failed */
    nic->must_resend = was_txing && !(inb(nic, EN0_ISR) & (ENISR_TX | ENISR_TX_ERR));
    outb(nic, EN0_TXCR, E8390_TXOFF);
    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_START);
    nic->overrun = 1;
    nic->curr = read_curr(nic);
}

/* The second half, once the ring is empty: acknowledge OVW, back to normal
 * transmit, and resend what the STOP cut off. */
static void rx_overrun_end(struct ne2k *restrict nic)
{
    outb(nic, EN0_ISR, ENISR_OVER);
    outb(nic, EN0_TXCR, E8390_TXCONFIG);
    if (nic->must_resend) {
        outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_START | E8390_TRANS);
        nic->tx_resends++;
    }
    nic->must_resend = 0;
    nic->overrun = 0;
}

/* What needs the driver before any frame: an overrun to recover from, full
 * tally counters to empty. */
static __attribute__((noinline)) void handle_events(struct ne2k *restrict nic, uint8_t isr)
{
    if (isr & ENISR_OVER && !nic->overrun)
        rx_overrun_start(nic);
    if (isr & ENISR_COUNTERS) {
        ne2k_read_counters(nic);
        outb(nic, EN0_ISR, ENISR_COUNTERS);
    }
}

/* Looks at ISR for such events, at every look at the ring.  Inline, so that
 * the look is one register read and the rare handling a call. */
static inline void service(struct ne2k *restrict nic)
{
    uint8_t isr = inb(nic, EN0_ISR);

    if (isr & (ENISR_OVER | ENISR_COUNTERS))
        handle_events(nic, isr);
}

/* ---- transmit (ei_start_xmit + NS8390_trigger_send) ---- */

static int trigger_send(struct ne2k *restrict nic, unsigned len)
{
    outb(nic, EN0_ISR, ENISR_TX | ENISR_TX_ERR);
    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_START);
    outb(nic, EN0_TPSR, NESM_START_PG);
    outb(nic, EN0_TCNTLO, len & 0xff);
    outb(nic, EN0_TCNTHI, len >> 8);
    outb(nic, E8390_CMD, E8390_NODMA | E8390_TRANS | E8390_START);

    /* the clock (three CLINT reads) only once the first look finds the
     * transmit still under way: a chip with no wire timing is done already */
    if (!(inb(nic, EN0_ISR) & (ENISR_TX | ENISR_TX_ERR))) {
        uint64_t deadline = deadline_in_ms(TX_TIMEOUT_MS);

        while (!(inb(nic, EN0_ISR) & (ENISR_TX | ENISR_TX_ERR)))
            if (time_now() > deadline)
                return -1;
    }
    outb(nic, EN0_ISR, ENISR_TX | ENISR_TX_ERR);
    return 0;
}

int ne2k_send_raw(struct ne2k *restrict nic, const void *frame, unsigned len, uint8_t tcr)
{
    int err;

    if (nic->overrun)
        rx_overrun_end(nic);
    if (len > ETH_FRAME_MAX + 4)
        len = ETH_FRAME_MAX + 4;
    if (block_output(nic, NESM_START_PG << 8, frame, len) < 0) {
        nic->tx_timeouts++;
        return -1;
    }
    outb(nic, EN0_TXCR, tcr);
    err = trigger_send(nic, len);
    outb(nic, EN0_TXCR, E8390_TXCONFIG);
    if (err < 0)
        nic->tx_timeouts++;
    else
        nic->tx_frames++;
    return err;
}

int ne2k_send(struct ne2k *restrict nic, const void *frame, unsigned len)
{
    static const uint8_t zeros[ETH_ZLEN];

    /* the wire is back to normal before anything is sent on it */
    if (nic->overrun)
        rx_overrun_end(nic);
    if (len > ETH_FRAME_MAX)
        len = ETH_FRAME_MAX;
    if (len < ETH_ZLEN) {
        /* pad in NIC memory: copy the frame, then zeros behind it */
        uint8_t buf[ETH_ZLEN];
        memcpy(buf, frame, len);
        memcpy(buf + len, zeros, ETH_ZLEN - len);
        len = ETH_ZLEN;
        if (block_output(nic, NESM_START_PG << 8, buf, len) < 0)
            goto timeout;
    } else if (block_output(nic, NESM_START_PG << 8, frame, len) < 0) {
        goto timeout;
    }

    if (trigger_send(nic, len) < 0)
        goto timeout;
    nic->tx_frames++;
    return 0;

timeout:
    nic->tx_timeouts++;
    return -1;
}

/* ---- receive (ei_receive) ---- */

static uint8_t read_curr(struct ne2k *restrict nic)
{
    uint8_t curr;

    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE1 | E8390_START);
    curr = inb(nic, EN1_CURPAG);
    outb(nic, E8390_CMD, E8390_NODMA | E8390_PAGE0 | E8390_START);
    return curr;
}

/* The page after BNRY: where the next unread frame starts. */
static uint8_t next_to_read(struct ne2k *restrict nic)
{
    uint8_t page = inb(nic, EN0_BOUNDARY) + 1;

    return page >= nic->rx_stop ? nic->rx_start : page;
}

static void set_boundary(struct ne2k *restrict nic, uint8_t next)
{
    outb(nic, EN0_BOUNDARY, next == nic->rx_start ? nic->rx_stop - 1 : next - 1);
}

int ne2k_recv(struct ne2k *restrict nic, void *buf, unsigned size)
{
    /* the 4-byte header the chip writes before each frame */
    struct {
        uint8_t status, next;
        uint8_t count_lo, count_hi;
    } hdr;
    uint8_t this_frame, curr;
    unsigned take, count, len;

    nic->looked = 0;
    service(nic);
    this_frame = next_to_read(nic);
    curr = nic->curr;
    /* CURR only needs reading (a page switch and back) once we have caught
     * up with the value we saw last time.  RX is acknowledged before that
     * look, as ne2k_wait does: a frame arriving after it raises the interrupt
     * again, so ne2k_wait can sleep without looking once more. */
    if (this_frame == curr) {
        outb(nic, EN0_ISR, ENISR_RX | ENISR_RX_ERR);
        curr = nic->curr = read_curr(nic);
        if (this_frame == curr) {
            if (nic->overrun)
                rx_overrun_end(nic);
            nic->looked = 1;
            return 0;
        }
    }

    /* The header and the frame come in one remote DMA, counted for the longest
     * frame the caller takes (Linux's ne.c reads them in two, each with its own
     * setup and RDC acknowledgement).  Reading stops at the frame's end, short of
     * the count: the chip then raises no RDC, and the next setup's first CR write
     * (RD2, abort/complete remote DMA) ends the transfer. */
    take = size < RX_FRAME_MAX ? size : RX_FRAME_MAX;
    remote_setup(nic, (uint16_t)(this_frame << 8), (uint16_t)((sizeof(hdr) + take + 1) & ~1u),
                 E8390_RREAD);
    read_data(nic, &hdr, sizeof(hdr));
    count = hdr.count_lo | hdr.count_hi << 8;
    len = count - sizeof(hdr);
    /* a header we cannot trust (next page outside the ring, absurd length):
     * give up on everything in the ring rather than follow garbage */
    if (hdr.next < nic->rx_start || hdr.next >= nic->rx_stop || count < sizeof(hdr) + 14 ||
        count > sizeof(hdr) + RX_FRAME_MAX || !(hdr.status & ENRSR_RXOK)) {
        printf("ne2000: bad ring header at page 0x%02x: status 0x%02x next 0x%02x count %u;"
               " ring reset\n",
               this_frame, hdr.status, hdr.next, count);
        nic->rx_errors++;
        nic->ring_resets++;
        nic->curr = read_curr(nic);
        set_boundary(nic, nic->curr);
        return 0;
    }

    if (len > size)
        len = size;
    read_data(nic, buf, len);
    set_boundary(nic, hdr.next);
    nic->rx_frames++;
    return (int)len;
}

/* ---- waiting ---- */

int ne2k_wait(struct ne2k *restrict nic, uint64_t deadline)
{
    for (;;) {
        /* acknowledge first, then look: a frame arriving after the look
         * raises the interrupt again and wfi returns at once.  OVW stays
         * until the overrun is recovered.  ne2k_recv has just done both when
         * it found the ring empty. */
        if (!nic->looked) {
            service(nic);
            outb(nic, EN0_ISR, ENISR_RX | ENISR_RX_ERR);
            if (next_to_read(nic) != (nic->curr = read_curr(nic)))
                return 1;
            if (nic->overrun)
                rx_overrun_end(nic);
        }
        nic->looked = 0;
        /* NO_DEADLINE is a timer that never fires: neither the clock nor the timer
         * needs touching */
        if (deadline != NO_DEADLINE && time_now() >= deadline)
            return 0;
        if (nic->polled) {
            /* no NIC interrupt: look again every POLL_US of virtual time */
            uint64_t tick = time_now() + POLL_US * TICKS_PER_US;
            timer_arm(tick < deadline ? tick : deadline);
            wfi();
            timer_disarm();
            continue;
        }
        if (deadline == NO_DEADLINE) {
            wfi();
        } else {
            timer_arm(deadline);
            wfi();
            timer_disarm();
        }
        uint32_t src = MMIO32(PLIC_BASE + PLIC_CLAIM);
        if (src) {
            /* the source is quiet before the claim completes, or the PLIC would
             * take the still-raised line for a new interrupt; ne2k_recv looks */
            nic->irqs++;
            outb(nic, EN0_ISR, ENISR_RX | ENISR_RX_ERR);
            MMIO32(PLIC_BASE + PLIC_CLAIM) = src;
            return 1;
        }
    }
}
