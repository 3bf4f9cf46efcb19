/* time.c - virtual time from the CLINT: mtime, mtimecmp, delays. */
#include "rt.h"

#define MTIME_LO    MMIO32(CLINT_BASE + CLINT_MTIME)
#define MTIME_HI    MMIO32(CLINT_BASE + CLINT_MTIME + 4)
#define MTIMECMP_LO MMIO32(CLINT_BASE + CLINT_MTIMECMP)
#define MTIMECMP_HI MMIO32(CLINT_BASE + CLINT_MTIMECMP + 4)

uint64_t time_now(void)
{
    uint32_t hi, lo;

    /* re-read when the low word wrapped between the two halves */
    do {
        hi = MTIME_HI;
        lo = MTIME_LO;
    } while (hi != MTIME_HI);
    return (uint64_t)hi << 32 | lo;
}

void timer_arm(uint64_t deadline)
{
    /* raise the high word first so no intermediate value fires early */
    MTIMECMP_HI = 0xFFFFFFFFu;
    MTIMECMP_LO = (uint32_t)deadline;
    MTIMECMP_HI = (uint32_t)(deadline >> 32);
}

void timer_disarm(void)
{
    MTIMECMP_HI = 0xFFFFFFFFu;
    MTIMECMP_LO = 0xFFFFFFFFu;
}

uint64_t deadline_in_ms(uint32_t ms)
{
    return time_now() + (uint64_t)ms * TICKS_PER_MS;
}

void delay_us(uint32_t us)
{
    uint64_t end = time_now() + (uint64_t)us * TICKS_PER_US;
    uint32_t saved_mie = csr_read(mie);
    uint32_t saved_mstatus = csr_read(mstatus) & MSTATUS_MIE;

    /* wfi wakes for enabled pending interrupts even with mstatus.MIE clear,
     * so with only MTIE enabled this sleeps until the deadline */
    csr_clear(mstatus, MSTATUS_MIE);
    csr_write(mie, MIE_MTIE);
    timer_arm(end);
    while (time_now() < end)
        wfi();
    timer_disarm();
    csr_write(mie, saved_mie);
    csr_set(mstatus, saved_mstatus);
}

void print_ms(uint64_t ticks)
{
    uint64_t us = ticks / TICKS_PER_US;

    printf("%u.%03u", (uint32_t)(us / 1000), (uint32_t)(us % 1000));
}
