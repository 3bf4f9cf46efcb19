/* args.c - the -append words as key=value arguments (argv[1..]). */
#include "rt.h"

static int g_argc;
static char **g_argv;

void args_init(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
}

const char *prog_name(void)
{
    return g_argc > 0 && g_argv[0] ? g_argv[0] : "guest";
}

/* The value of "key=value", or NULL; a bare word "key" has the value "". */
static const char *lookup(const char *key)
{
    size_t n = strlen(key);

    for (int i = 1; i < g_argc; i++) {
        const char *w = g_argv[i];
        if (strncmp(w, key, n) == 0) {
            if (w[n] == '=')
                return w + n + 1;
            if (w[n] == 0)
                return w + n;
        }
    }
    return NULL;
}

static void bad_value(const char *key, const char *v)
{
    printf("%s: bad value for %s: '%s'\n", prog_name(), key, v);
    exit(2);
}

int arg_has(const char *key) { return lookup(key) != NULL; }

const char *arg_str(const char *key, const char *def)
{
    const char *v = lookup(key);
    return v ? v : def;
}

int parse_uint(const char *s, uint32_t *out)
{
    uint32_t v = 0, base = 10;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s)
        return 0;
    for (; *s; s++) {
        uint32_t d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (base == 16 && (*s | 0x20) >= 'a' && (*s | 0x20) <= 'f')
            d = (*s | 0x20) - 'a' + 10;
        else
            return 0;
        if (v > (0xFFFFFFFFu - d) / base)
            return 0;
        v = v * base + d;
    }
    *out = v;
    return 1;
}

int parse_ip(const char *s, uint32_t *out)
{
    uint32_t ip = 0;

    for (int i = 0; i < 4; i++) {
        uint32_t part = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 4) {
            part = part * 10 + (*s++ - '0');
            digits++;
        }
        if (!digits || part > 255)
            return 0;
        ip = ip << 8 | part;
        if (i < 3 && *s++ != '.')
            return 0;
    }
    if (*s)
        return 0;
    *out = ip;
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int parse_mac(const char *s, uint8_t out[6])
{
    for (int i = 0; i < 6; i++) {
        int hi = hexval(s[0]), lo = hexval(s[1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
        if (i < 5 && *s++ != ':')
            return 0;
    }
    return *s == 0;
}

uint32_t arg_uint(const char *key, uint32_t def)
{
    const char *v = lookup(key);
    uint32_t n;

    if (!v)
        return def;
    if (!parse_uint(v, &n))
        bad_value(key, v);
    return n;
}

uint32_t arg_ms(const char *key, uint32_t def_ms)
{
    char ms_key[32];
    const char *secs = lookup(key), *ms;
    uint32_t n;

    snprintf(ms_key, sizeof ms_key, "%s_ms", key);
    ms = lookup(ms_key);
    if (secs && ms) {
        printf("%s: give %s= (seconds) or %s= (milliseconds), not both\n", prog_name(), key,
               ms_key);
        exit(2);
    }
    if (ms)
        return arg_uint(ms_key, def_ms);
    if (!secs)
        return def_ms;
    /* seconds beyond 2^32 ms (about 49 days) would wrap into a short timeout */
    if (!parse_uint(secs, &n) || n > 0xFFFFFFFFu / 1000)
        bad_value(key, secs);
    return n * 1000;
}

int arg_ip(const char *key, uint32_t *out)
{
    const char *v = lookup(key);

    if (!v)
        return 0;
    if (!parse_ip(v, out))
        bad_value(key, v);
    return 1;
}

int arg_mac(const char *key, uint8_t out[6])
{
    const char *v = lookup(key);

    if (!v)
        return 0;
    if (!parse_mac(v, out))
        bad_value(key, v);
    return 1;
}

void arg_check(const char *prog, const char *const *known)
{
    for (int i = 1; i < g_argc; i++) {
        const char *w = g_argv[i];
        size_t n = 0;
        int ok = 0;
        while (w[n] && w[n] != '=')
            n++;
        for (const char *const *k = known; *k; k++)
            if (strlen(*k) == n && strncmp(*k, w, n) == 0)
                ok = 1;
        if (!ok) {
            printf("%s: unknown argument '%s' (known:", prog, w);
            for (const char *const *k = known; *k; k++)
                printf(" %s=", *k);
            printf(")\n");
            exit(2);
        }
    }
}
