/* exit3.c - exits with status 3 through the power device. */
#include "rt.h"

int main(void)
{
    printf("exit3: exiting with status 3\n");
    exit(3);
}
