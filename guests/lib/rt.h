/* rt.h - the toynic guest runtime: console, exit, time, traps, arguments, strings.
 *
 * Programs get main(argc, argv) with the -append words in argv[1..]; returning
 * from main is exit(return value). */
#ifndef TOYNIC_RT_H
#define TOYNIC_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "board.h"

/* ---- memory-mapped I/O ---- */
#define MMIO8(a)  (*(volatile uint8_t *)(uintptr_t)(a))
#define MMIO16(a) (*(volatile uint16_t *)(uintptr_t)(a))
#define MMIO32(a) (*(volatile uint32_t *)(uintptr_t)(a))

/* ---- CSRs (machine mode) ---- */
#define csr_read(csr) ({ uint32_t v_; __asm__ volatile("csrr %0, " #csr : "=r"(v_)); v_; })
#define csr_write(csr, v) __asm__ volatile("csrw " #csr ", %0" ::"r"((uint32_t)(v)))
#define csr_set(csr, v) __asm__ volatile("csrs " #csr ", %0" ::"r"((uint32_t)(v)))
#define csr_clear(csr, v) __asm__ volatile("csrc " #csr ", %0" ::"r"((uint32_t)(v)))

#define MSTATUS_MIE  (1u << 3)
#define MIE_MTIE     (1u << 7)
#define MIE_MEIE     (1u << 11)
#define MCAUSE_INTR  0x80000000u
#define IRQ_M_TIMER  7
#define IRQ_M_EXT    11

/* retired instructions (minstret/minstreth) */
static inline uint64_t instret_now(void)
{
    uint32_t hi, lo;

    do {
        hi = csr_read(minstreth);
        lo = csr_read(minstret);
    } while (hi != csr_read(minstreth));
    return (uint64_t)hi << 32 | lo;
}

static inline void wfi(void) { __asm__ volatile("wfi" ::: "memory"); }

/* ---- console (UART) ---- */
void putchar_(char c);
void puts_(const char *s);           /* no newline added */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- exit through the power device: 0 = pass, anything else = that status ---- */
void exit(int code) __attribute__((noreturn));

/* Exit status used when a trap reaches the default handler: 100 + mcause. */
#define EXIT_TRAP_BASE 100

/* ---- time: the CLINT's mtime, TIMEBASE_HZ ticks per virtual second ---- */
#define TICKS_PER_US (TIMEBASE_HZ / 1000000u)
#define TICKS_PER_MS (TIMEBASE_HZ / 1000u)
uint64_t time_now(void);                   /* mtime */
void timer_arm(uint64_t deadline);         /* mtimecmp = deadline */
void timer_disarm(void);                   /* mtimecmp = max */
void delay_us(uint32_t us);                /* idle (wfi) for us microseconds of virtual time */
uint64_t deadline_in_ms(uint32_t ms);
#define FOREVER_MS 0xFFFFFFFFu             /* a timeout that never ends */
#define NO_DEADLINE (~0ull)                /* mtimecmp's reset value: a deadline never reached */
/* Prints "S.mmm" milliseconds from a tick count, e.g. ticks 4120 -> "0.412". */
void print_ms(uint64_t ticks);

/* ---- traps ---- */
struct trap_frame {
    uint32_t x[32];                        /* x[0] unused; x[2] = interrupted sp */
};
/* Called for a timer interrupt; if none is set the timer is disarmed. */
void trap_set_timer_handler(void (*fn)(void));
/* Called for a machine external interrupt; if none is set MEIE is cleared. */
void trap_set_external_handler(void (*fn)(void));
/* Called for exceptions; return nonzero when handled (the hook may change
 * mepc), zero to fall through to the default report-and-exit. */
void trap_set_exception_hook(int (*fn)(struct trap_frame *f, uint32_t mcause, uint32_t mepc,
                                       uint32_t mtval));
const char *trap_cause_name(uint32_t mcause);
void rt_trap(struct trap_frame *f);

/* ---- -append arguments: key=value words ---- */
const char *arg_str(const char *key, const char *def);
uint32_t arg_uint(const char *key, uint32_t def);   /* decimal or 0x hex */
/* A duration in milliseconds from "KEY_ms=N" (milliseconds) or "KEY=N" (seconds), def_ms
 * if neither is given; both at once exits with status 2. */
uint32_t arg_ms(const char *key, uint32_t def_ms);
int arg_ip(const char *key, uint32_t *out);         /* dotted quad -> host order; 1 if present */
int arg_mac(const char *key, uint8_t out[6]);       /* aa:bb:cc:dd:ee:ff; 1 if present */
int arg_has(const char *key);
/* Exits with status 2 and a message naming the word if any word's key is not
 * in the NULL-terminated list. */
void arg_check(const char *prog, const char *const *known);
const char *prog_name(void);

int parse_uint(const char *s, uint32_t *out);
int parse_ip(const char *s, uint32_t *out);
int parse_mac(const char *s, uint8_t out[6]);

/* ---- strings ---- */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);


#endif
