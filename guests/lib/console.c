/* console.c - output to the 16550A UART and a small printf.
 *
 * Supported conversions: %d %i %u %x %X %p %c %s %%, with '-', '0', a field
 * width, and the length modifiers l (ignored: long is 32 bits) and ll (64 bits). */
#include "rt.h"

#define UART_THR 0
#define UART_LSR 5
#define UART_LSR_THRE 0x20

void putchar_(char c)
{
    while (!(MMIO8(UART_BASE + UART_LSR) & UART_LSR_THRE))
        ;
    MMIO8(UART_BASE + UART_THR) = (uint8_t)c;
}

void puts_(const char *s)
{
    while (*s)
        putchar_(*s++);
}

/* An output sink: the UART or a bounded buffer. */
struct sink {
    char *buf;
    size_t size;
    size_t len;
};

static void emit(struct sink *o, char c)
{
    if (!o->buf)
        putchar_(c);
    else if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void emit_field(struct sink *o, const char *s, size_t n, int width, int left, char pad)
{
    int fill = width > (int)n ? width - (int)n : 0;

    if (!left)
        while (fill-- > 0)
            emit(o, pad);
    while (n--)
        emit(o, *s++);
    if (left)
        while (fill-- > 0)
            emit(o, ' ');
}

static int format(struct sink *o, const char *fmt, va_list ap)
{
    char tmp[24];

    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            emit(o, *fmt);
            continue;
        }
        fmt++;
        int left = 0, width = 0, longlong = 0;
        char pad = ' ';
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                pad = '0';
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            longlong = fmt[1] == 'l';
            fmt += longlong ? 2 : 1;
            if (longlong)
                break;
        }
        char conv = *fmt;
        if (!conv)
            break;
        if (conv == '%') {
            emit(o, '%');
        } else if (conv == 's') {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            emit_field(o, s, strlen(s), width, left, ' ');
        } else if (conv == 'c') {
            tmp[0] = (char)va_arg(ap, int);
            emit_field(o, tmp, 1, width, left, ' ');
        } else if (conv == 'd' || conv == 'i' || conv == 'u' || conv == 'x' || conv == 'X' ||
                   conv == 'p') {
            uint64_t v;
            int neg = 0;
            unsigned base = (conv == 'x' || conv == 'X' || conv == 'p') ? 16 : 10;
            const char *digits = conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
            if (conv == 'p') {
                v = (uintptr_t)va_arg(ap, void *);
                emit(o, '0');
                emit(o, 'x');
            } else if (conv == 'd' || conv == 'i') {
                int64_t s = longlong ? va_arg(ap, int64_t) : va_arg(ap, int32_t);
                neg = s < 0;
                v = neg ? -(uint64_t)s : (uint64_t)s;
            } else {
                v = longlong ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
            }
            size_t n = sizeof(tmp);
            if (base == 16) {
                do {
                    tmp[--n] = digits[v & 15];
                    v >>= 4;
                } while (v);
            } else {
                /* 64-bit division is a libgcc loop on rv32: only for what needs it */
                for (; v >> 32; v /= 10)
                    tmp[--n] = digits[v % 10];
                uint32_t w = (uint32_t)v;
                do {
                    tmp[--n] = digits[w % 10];
                    w /= 10;
                } while (w);
            }
            if (neg) {
                if (pad == '0' && !left) {
                    emit(o, '-');
                    width--;
                } else {
                    tmp[--n] = '-';
                }
            }
            emit_field(o, tmp + n, sizeof(tmp) - n, width, left, left ? ' ' : pad);
        } else {
            emit(o, '%');
            emit(o, conv);
        }
    }
    return (int)o->len;
}

int vprintf(const char *fmt, va_list ap)
{
    struct sink o = {0, 0, 0};
    return format(&o, fmt, ap);
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    struct sink o = {buf, size, 0};
    va_list ap;
    va_start(ap, fmt);
    int n = format(&o, fmt, ap);
    va_end(ap);
    if (size)
        buf[o.len < size ? o.len : size - 1] = 0;
    return n;
}
