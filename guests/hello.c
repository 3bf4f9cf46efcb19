/* hello.c - the smallest guest: print a line, exit 0. */
#include "rt.h"

int main(int argc, char **argv)
{
    printf("Hello from toynic!\n");
    if (argc > 1) {
        printf("hello: args:");
        for (int i = 1; i < argc; i++)
            printf(" %s", argv[i]);
        printf("\n");
    }
    return 0;
}
