/* trapdemo.c - exceptions land in the guest's trap handler.
 *
 * Without arguments: an illegal instruction, a jump to a misaligned address and
 * an ecall, each caught by an exception hook that prints what the CPU reported
 * beside what this program expected, then resumes after the faulting
 * instruction.  Exit 0 if all three matched, 1 otherwise.
 * `fatal=illegal|misaligned|ecall|ebreak|load`: raise that one with no hook,
 * so the runtime's default handler reports it and exits 100 + mcause. */
#include "rt.h"

#define ILLEGAL_INSN 0xC0FFE00Bu    /* custom-0 opcode: not RV32IM */

static volatile uint32_t want_cause, want_epc, want_tval;
static volatile int mismatches, caught;

static int hook(struct trap_frame *f, uint32_t mcause, uint32_t mepc, uint32_t mtval)
{
    (void)f;
    int ok = mcause == want_cause && mepc == want_epc && mtval == want_tval;

    caught++;
    printf("trapdemo: caught %s: mcause=%u mepc=0x%08x mtval=0x%08x (expected %u 0x%08x "
           "0x%08x) %s\n",
           trap_cause_name(mcause), mcause, mepc, mtval, want_cause, want_epc, want_tval,
           ok ? "ok" : "MISMATCH");
    mismatches += !ok;
    /* every faulting instruction here is 4 bytes long and followed by its
     * resume point */
    csr_write(mepc, mepc + 4);
    return 1;
}

static void do_illegal(void)
{
    uint32_t at;

    __asm__ volatile("la %0, 1f\n"
                     "sw %0, %1\n"
                     "1: .word %2\n"
                     : "=&r"(at), "=m"(want_epc)
                     : "i"(ILLEGAL_INSN)
                     : "memory");
    (void)at;
}

static void do_misaligned(void)
{
    uint32_t t;

    /* jr to label+2: the jump itself traps (mepc = the jr), mtval = target */
    __asm__ volatile("la %0, 2f\n"
                     "sw %0, %1\n"
                     "la %0, 1f\n"
                     "addi %0, %0, 2\n"
                     "sw %0, %2\n"
                     "2: jr %0\n"
                     "1: nop\n"
                     "nop\n"
                     : "=&r"(t), "=m"(want_epc), "=m"(want_tval)
                     :
                     : "memory");
}

static void do_ecall(void)
{
    uint32_t t;

    __asm__ volatile("la %0, 1f\n"
                     "sw %0, %1\n"
                     "1: ecall\n"
                     : "=&r"(t), "=m"(want_epc)
                     :
                     : "memory", "a0", "a1", "a7");
}

static void do_ebreak(void) { __asm__ volatile("ebreak" ::: "memory"); }

static void do_bad_load(void)
{
    /* nothing is mapped just below RAM */
    (void)MMIO32(RAM_BASE - 0x1000);
}

int main(void)
{
    static const char *const known[] = {"fatal", 0};
    const char *fatal;

    arg_check("trapdemo", known);
    fatal = arg_str("fatal", 0);
    if (fatal) {
        printf("trapdemo: raising %s with no hook\n", fatal);
        if (!strcmp(fatal, "illegal"))
            do_illegal();
        else if (!strcmp(fatal, "misaligned"))
            do_misaligned();
        else if (!strcmp(fatal, "ecall"))
            do_ecall();
        else if (!strcmp(fatal, "ebreak"))
            do_ebreak();
        else if (!strcmp(fatal, "load"))
            do_bad_load();
        else {
            printf("trapdemo: unknown fatal=%s\n", fatal);
            return 2;
        }
        printf("trapdemo: %s did not trap\n", fatal);
        return 1;
    }

    trap_set_exception_hook(hook);
    want_cause = 2;
    want_tval = ILLEGAL_INSN;
    do_illegal();
    want_cause = 0;
    do_misaligned();
    want_cause = 11;
    want_tval = 0;
    do_ecall();
    trap_set_exception_hook(0);

    printf("trapdemo: %d traps caught, %d mismatches\n", caught, mismatches);
    return caught == 3 && mismatches == 0 ? 0 : 1;
}
