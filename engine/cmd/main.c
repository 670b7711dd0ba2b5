/* main.c - crier's entry point; everything else is in libcrier (see engine/cmd/cli.c). */
#include "crier/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
