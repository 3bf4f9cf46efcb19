/* fmt.c - prints a fixed table of numbers through the runtime's printf, one per
 * line, so a test can compare its output with the host's formatting of the same
 * values (decimal and hex, 32 and 64 bits, signs, widths and padding). */
#include "rt.h"

static const uint64_t unsigned64[] = {
    0, 1, 9, 10, 99, 4294967295ull, 4294967296ull, 42949672950ull,
    1000000000000ull, 12345678901234567890ull, 18446744073709551615ull,
};
static const int64_t signed64[] = {
    0, -1, 2147483647, -2147483648ll, 4294967296ll, -4294967297ll,
    9223372036854775807ll, -9223372036854775807ll - 1,
};
static const uint32_t unsigned32[] = {0, 7, 10, 65535, 2147483648u, 4294967295u};
static const int32_t signed32[] = {0, -7, 2147483647, -2147483647 - 1};

int main(void)
{
    for (unsigned i = 0; i < sizeof(unsigned64) / sizeof(unsigned64[0]); i++)
        printf("llu %llu %llx %020llu\n", unsigned64[i], unsigned64[i], unsigned64[i]);
    for (unsigned i = 0; i < sizeof(signed64) / sizeof(signed64[0]); i++)
        printf("lld %lld %24lld %-24lld|\n", signed64[i], signed64[i], signed64[i]);
    for (unsigned i = 0; i < sizeof(unsigned32) / sizeof(unsigned32[0]); i++)
        printf("u %u %x %X %08x %-6u|\n", unsigned32[i], unsigned32[i], unsigned32[i],
               unsigned32[i], unsigned32[i]);
    for (unsigned i = 0; i < sizeof(signed32) / sizeof(signed32[0]); i++)
        printf("d %d %5d %05d %-5d|\n", signed32[i], signed32[i], signed32[i], signed32[i]);
    return 0;
}
