/* memcpy.c - memory-heavy benchmark: copies a 64 KiB block around a 256 KiB
 * arena `rounds=` times (default 4) with word and byte copies, then prints a
 * checksum so a test can tell the copies were right. */
#include "rt.h"

#define BLOCK (64 * 1024)
#define SLOTS 4

static uint8_t arena[SLOTS][BLOCK];

int main(void)
{
    static const char *const known[] = {"rounds", 0};
    uint32_t rounds, sum = 2166136261u;

    arg_check("memcpy", known);
    rounds = arg_uint("rounds", 4);
    for (uint32_t i = 0; i < BLOCK; i++)
        arena[0][i] = (uint8_t)(i ^ (i >> 7));

    uint64_t t0 = time_now();
    for (uint32_t r = 0; r < rounds; r++) {
        memcpy(arena[1], arena[0], BLOCK);
        memcpy(arena[2] + 1, arena[1], BLOCK - 1);    /* misaligned: byte path */
        memmove(arena[3], arena[2] + 1, BLOCK - 1);
        arena[3][BLOCK - 1] = arena[0][BLOCK - 1];
        memcpy(arena[0], arena[3], BLOCK);
    }
    uint64_t t1 = time_now();
    for (uint32_t i = 0; i < BLOCK; i += 4)
        sum = (sum ^ *(uint32_t *)&arena[0][i]) * 16777619u;    /* FNV-1a step per word */
    int same = memcmp(arena[0], arena[1], BLOCK) == 0;
    printf("memcpy: %u KiB copied, checksum=0x%08x %s, ", rounds * 4 * (BLOCK / 1024), sum,
           same ? "ok" : "CORRUPT");
    print_ms(t1 - t0);
    printf(" ms virtual\n");
    return same ? 0 : 1;
}
