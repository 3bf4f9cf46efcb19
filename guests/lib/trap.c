/* trap.c - the C half of the trap handler (crt0's trap_entry saves registers).
 *
 * Interrupts go to the hooks a program installs; exceptions go to an optional
 * hook, else they are reported on the console and end the run with status
 * EXIT_TRAP_BASE + mcause. */
#include "rt.h"

static void (*timer_handler)(void);
static void (*external_handler)(void);
static int (*exception_hook)(struct trap_frame *, uint32_t, uint32_t, uint32_t);

void trap_set_timer_handler(void (*fn)(void)) { timer_handler = fn; }
void trap_set_external_handler(void (*fn)(void)) { external_handler = fn; }

void trap_set_exception_hook(int (*fn)(struct trap_frame *, uint32_t, uint32_t, uint32_t))
{
    exception_hook = fn;
}

const char *trap_cause_name(uint32_t mcause)
{
    static const char *const exc[] = {
        "instruction address misaligned", "instruction access fault", "illegal instruction",
        "breakpoint", "load address misaligned", "load access fault",
        "store address misaligned", "store access fault", "ecall from U-mode",
        "ecall from S-mode", "reserved", "ecall from M-mode",
    };

    if (mcause & MCAUSE_INTR) {
        switch (mcause & ~MCAUSE_INTR) {
        case 3: return "machine software interrupt";
        case IRQ_M_TIMER: return "machine timer interrupt";
        case IRQ_M_EXT: return "machine external interrupt";
        default: return "unknown interrupt";
        }
    }
    return mcause < sizeof(exc) / sizeof(exc[0]) ? exc[mcause] : "unknown exception";
}

void rt_trap(struct trap_frame *f)
{
    uint32_t mcause = csr_read(mcause);
    uint32_t mepc = csr_read(mepc);
    uint32_t mtval = csr_read(mtval);

    if (mcause & MCAUSE_INTR) {
        uint32_t code = mcause & ~MCAUSE_INTR;
        if (code == IRQ_M_TIMER) {
            if (timer_handler)
                timer_handler();
            else
                timer_disarm();
            return;
        }
        if (code == IRQ_M_EXT && external_handler) {
            external_handler();
            return;
        }
        /* nobody wants it: mask it so it cannot storm */
        csr_clear(mie, 1u << code);
        printf("trap: unexpected %s (mcause=0x%08x), masked\n", trap_cause_name(mcause), mcause);
        return;
    }
    if (exception_hook && exception_hook(f, mcause, mepc, mtval))
        return;
    printf("trap: %s (mcause=%u) mepc=0x%08x mtval=0x%08x\n", trap_cause_name(mcause), mcause,
           mepc, mtval);
    exit(EXIT_TRAP_BASE + (int)mcause);
}
