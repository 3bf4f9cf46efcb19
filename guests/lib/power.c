/* power.c - exit(code) through the sifive_test-style power device, and the
 * C entry point crt0 calls. */
#include "rt.h"

void exit(int code)
{
    uint32_t v = code == 0 ? POWER_PASS : POWER_FAIL | ((uint32_t)code & 0xFFFF) << 16;

    MMIO32(POWER_BASE) = v;
    /* the machine stops at the write above; never run on if it did not */
    for (;;)
        wfi();
}

void args_init(int argc, char **argv);
int main(int argc, char **argv);

void rt_main(int argc, char **argv)
{
    args_init(argc, argv);
    exit(main(argc, argv));
}
