/* crc32.c - CPU-bound benchmark: table-driven CRC-32 (IEEE, as zlib) over
 * 64 KiB, `rounds=` times (default 1).  The data is bytes i*7 + (i>>8), so a
 * test can recompute the result with zlib.crc32. */
#include "rt.h"

#define SIZE (64 * 1024)

static uint8_t data[SIZE];
static uint32_t table[256];

int main(void)
{
    static const char *const known[] = {"rounds", 0};
    uint32_t rounds, crc = 0;

    arg_check("crc32", known);
    rounds = arg_uint("rounds", 1);
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    for (uint32_t i = 0; i < SIZE; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 8));

    uint64_t t0 = time_now();
    for (uint32_t r = 0; r < rounds; r++) {
        crc = 0xFFFFFFFFu;
        for (uint32_t i = 0; i < SIZE; i++)
            crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
        crc ^= 0xFFFFFFFFu;
    }
    uint64_t t1 = time_now();
    printf("crc32: %u bytes x %u rounds, crc=0x%08x, ", SIZE, rounds, crc);
    print_ms(t1 - t0);
    printf(" ms virtual\n");
    return 0;
}
