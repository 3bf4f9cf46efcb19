/* ne2000.h - a small NE2000 (DP8390) driver for toynic guests, in the style
 * of Linux's lib8390.c + ne.c.  Register and bit names follow Linux 8390.h. */
#ifndef TOYNIC_NE2000_H
#define TOYNIC_NE2000_H

#include <stdint.h>

#include "rt.h"

/* ---- page 0/1 registers (offsets from iobase) ---- */
#define E8390_CMD     0x00  /* command register, every page */
#define EN0_STARTPG   0x01  /* W: PSTART, first page of the receive ring */
#define EN0_STOPPG    0x02  /* W: PSTOP, one past the last ring page */
#define EN0_BOUNDARY  0x03  /* BNRY: last page the driver has read */
#define EN0_TSR       0x04  /* R: transmit status */
#define EN0_TPSR      0x04  /* W: transmit page start */
#define EN0_TCNTLO    0x05  /* W: transmit byte count */
#define EN0_TCNTHI    0x06
#define EN0_ISR       0x07  /* interrupt status; write 1s to clear */
#define EN0_RSARLO    0x08  /* W: remote DMA start address */
#define EN0_RSARHI    0x09
#define EN0_RCNTLO    0x0a  /* W: remote DMA byte count */
#define EN0_RCNTHI    0x0b
#define EN0_RXCR      0x0c  /* W: receive configuration (RCR) */
#define EN0_TXCR      0x0d  /* W: transmit configuration (TCR) */
#define EN0_DCFG      0x0e  /* W: data configuration (DCR) */
#define EN0_IMR       0x0f  /* W: interrupt mask */
#define EN0_COUNTER0  0x0d  /* R: CNTR0, frame alignment errors (cleared when read) */
#define EN0_COUNTER1  0x0e  /* R: CNTR1, CRC errors */
#define EN0_COUNTER2  0x0f  /* R: CNTR2, missed frames */
#define EN0_RSR       0x0c  /* R: receive status of the last frame */
#define EN1_PHYS      0x01  /* page 1: PAR0..5, station address */
#define EN1_CURPAG    0x07  /* page 1: CURR, next page the NIC will fill */
#define EN1_MULT      0x08  /* page 1: MAR0..7, multicast hash */
#define NE_DATAPORT   0x10  /* remote DMA data port */
#define NE_RESET      0x1f  /* reading it resets the board */

/* ---- CR bits ---- */
#define E8390_STOP    0x01
#define E8390_START   0x02
#define E8390_TRANS   0x04
#define E8390_RREAD   0x08
#define E8390_RWRITE  0x10
#define E8390_NODMA   0x20
#define E8390_PAGE0   0x00
#define E8390_PAGE1   0x40

/* ---- ISR/IMR bits ---- */
#define ENISR_RX      0x01
#define ENISR_TX      0x02
#define ENISR_RX_ERR  0x04
#define ENISR_TX_ERR  0x08
#define ENISR_OVER    0x10
#define ENISR_COUNTERS 0x20
#define ENISR_RDC     0x40
#define ENISR_RESET   0x80

/* ---- RCR, TCR, DCR, TSR, RSR bits ---- */
#define E8390_RXCONFIG 0x04  /* RCR AB: accept broadcast */
#define ENRCR_AM      0x08   /* accept multicast (hashed through MAR) */
#define ENRCR_PRO     0x10   /* promiscuous */
#define E8390_RXOFF   0x20   /* RCR MON: monitor mode, nothing stored */
#define E8390_TXCONFIG 0x00  /* TCR normal */
#define E8390_TXOFF   0x02   /* TCR internal loopback */
#define ENDCFG_WTS    0x01   /* word-wide remote DMA */
#define NE_DCR_BYTE   0x48   /* FIFO threshold 8 bytes, normal (not loopback), byte wide */
#define ENTCR_CRC     0x01   /* TCR: inhibit the CRC (the frame carries its own FCS) */
#define ENRCR_SEP     0x01   /* RCR: save errored frames too */
#define ENTSR_PTX     0x01
#define ENRSR_RXOK    0x01
#define ENRSR_CRC     0x02
#define ENRSR_MPA     0x10

/* ---- NE2000 buffer layout (pages of 256 bytes) ---- */
#define NESM_START_PG 0x40   /* first page of the 16 KiB (here 32 KiB) packet RAM */
#define NESM_STOP_PG  0x80   /* the ring ends here, as Linux's ne.c */
#define NE_TX_PAGES   6      /* one full-size frame: 6 * 256 >= 1518 */
#define NE_RX_START   (NESM_START_PG + NE_TX_PAGES)

#define ETH_ZLEN      60     /* minimum frame without FCS */
#define ETH_FRAME_MAX 1514   /* maximum frame without FCS */

/* The driver's functions take the NIC as `struct ne2k *restrict`: its registers
 * are never the struct.  Without that promise gcc must assume a volatile byte
 * store to a register may change nic->io (a byte store may alias anything) and
 * reloads it before every register access, one extra load each. */
struct ne2k {
    uint32_t io;             /* ISA_BASE + iobase: address of register 0 */
    uint16_t iobase;
    uint8_t irq;             /* ISA IRQ; PLIC source ISA_IRQ_BASE + irq */
    uint8_t polled;          /* 1: never wfi, spin on the registers */
    uint8_t mac[6];          /* from the PROM */
    uint8_t prom[16];        /* de-duplicated PROM */
    uint8_t rx_start, rx_stop;
    uint8_t curr;            /* CURR as last read: frames before it need no re-read */
    uint8_t overrun;         /* 1 from an overrun's restart until the ring is drained */
    uint8_t must_resend;     /* the overrun's STOP cut a transmit off */
    uint8_t looked;          /* ne2k_recv acknowledged RX, then found the ring empty */
    /* counters */
    uint32_t rx_frames, tx_frames, rx_errors, tx_timeouts, ring_resets, irqs;
    uint32_t rx_overruns, tx_resends;
    /* the chip's tally counters, summed over every read (each read clears them) */
    uint32_t rx_frame_errors, rx_crc_errors, rx_missed;
};

/* Finds the board: resets it, reads the PROM by remote DMA and checks the
 * NE2000 signature.  0 on success, -1 no board, -2 no reset ack, -3 bad
 * signature (an NE1000 or something else). */
int ne2k_probe(struct ne2k *restrict nic, uint16_t iobase, uint8_t irq);
/* Programs the ring, the station address and the receive filter (rcr: RCR
 * bits, normally E8390_RXCONFIG), then starts the chip and, unless polled,
 * routes its interrupt through the PLIC. */
void ne2k_open(struct ne2k *restrict nic, uint8_t rcr);
/* Transmits one frame (padded to ETH_ZLEN); 0 on success, -1 on timeout. */
int ne2k_send(struct ne2k *restrict nic, const void *frame, unsigned len);
/* Copies the next received frame into buf (at most size bytes; a longer one
 * is truncated).  Returns its length, 0 if the ring is empty. */
int ne2k_recv(struct ne2k *restrict nic, void *buf, unsigned size);
/* Waits until a frame may be in the ring (1: one is, or the NIC interrupted) or
 * mtime reaches deadline (0).  Callers read with ne2k_recv until it returns 0. */
int ne2k_wait(struct ne2k *restrict nic, uint64_t deadline);

/* After ne2k_recv found the ring empty: waits and reads until a frame comes (its
 * length) or the deadline passes (0). */
static inline int ne2k_recv_after_wait(struct ne2k *restrict nic, void *buf, unsigned size,
                                       uint64_t deadline)
{
    int len;

    do {
        if (!ne2k_wait(nic, deadline))
            return 0;
    } while ((len = ne2k_recv(nic, buf, size)) <= 0);
    return len;
}

/* ne2k_recv, waiting for a frame until deadline: its length, or 0 at the deadline.
 * Inline, as the two calls it makes are a reader's hot path. */
static inline int ne2k_recv_until(struct ne2k *restrict nic, void *buf, unsigned size,
                                  uint64_t deadline)
{
    int len = ne2k_recv(nic, buf, size);

    return len > 0 ? len : ne2k_recv_after_wait(nic, buf, size, deadline);
}

/* ne2k_recv_until with an idle timeout: ms (FOREVER_MS: none) from when the ring is
 * found empty.  The clock is read only then: a reader that is behind takes frame
 * after frame without it. */
static inline int ne2k_recv_within(struct ne2k *restrict nic, void *buf, unsigned size, uint32_t ms)
{
    int len = ne2k_recv(nic, buf, size);

    if (len > 0)
        return len;
    return ne2k_recv_after_wait(nic, buf, size,
                                ms == FOREVER_MS ? NO_DEADLINE : deadline_in_ms(ms));
}
/* Adds the chip's tally counters (CNTR0-2, cleared by the read) to rx_frame_errors,
 * rx_crc_errors, rx_missed (Linux: ei_get_stats). */
void ne2k_read_counters(struct ne2k *restrict nic);
/* Transmits len bytes of frame as they are (no padding, no CRC appended when tcr
 * has ENTCR_CRC), with TCR = tcr for this one frame, then TCR normal again.
 * Internal loopback (E8390_TXOFF) puts the frame in our own ring, not on the
 * wire.  0 on success, -1 on timeout. */
int ne2k_send_raw(struct ne2k *restrict nic, const void *frame, unsigned len, uint8_t tcr);

#endif
