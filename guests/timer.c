/* timer.c - timer interrupts through the trap handler.
 *
 * Arms mtimecmp `ticks` times (default 5), `period=` ms apart (default 10),
 * counting interrupts in the handler; main idles in wfi.  Each line names
 * the tick and its deadline, so the output is the same on every run. */
#include "rt.h"

static volatile uint32_t ticks_seen;
static uint32_t ticks_wanted;
static uint64_t next_deadline;
static uint64_t period;

static void on_timer(void)
{
    uint32_t n = ++ticks_seen;

    printf("timer: tick %u/%u deadline=%u.%03u ms\n", n, ticks_wanted,
           (uint32_t)(next_deadline / TICKS_PER_MS),
           (uint32_t)(next_deadline % TICKS_PER_MS / TICKS_PER_US));
    if (n < ticks_wanted) {
        next_deadline += period;
        timer_arm(next_deadline);
    } else {
        timer_disarm();
    }
}

int main(void)
{
    static const char *const known[] = {"ticks", "period", 0};

    arg_check("timer", known);
    ticks_wanted = arg_uint("ticks", 5);
    period = (uint64_t)arg_uint("period", 10) * TICKS_PER_MS;
    printf("timer: %u ticks, %u ms apart\n", ticks_wanted, (uint32_t)(period / TICKS_PER_MS));
    if (!ticks_wanted)
        return 0;

    trap_set_timer_handler(on_timer);
    /* deadlines count from 0 so the printed values do not depend on how long
     * start-up took */
    next_deadline = period;
    timer_arm(next_deadline);
    csr_write(mie, MIE_MTIE);
    csr_set(mstatus, MSTATUS_MIE);
    while (ticks_seen < ticks_wanted)
        wfi();
    csr_clear(mstatus, MSTATUS_MIE);
    printf("timer: done, %u interrupts\n", ticks_seen);
    return 0;
}
