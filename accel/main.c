/* main.c -- placeholder until the proxy core lands (issue 2). */
#include "ac.h"
#include <stdio.h>
int
main(void)
{
    fprintf(stderr, "accel: not built yet\n");
    return 2;
}
