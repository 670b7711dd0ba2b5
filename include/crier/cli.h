/*
 * cli.h - the crier command line. main() only calls cli_main(), so that tests link
 * everything else.
 */
#ifndef CRIER_CLI_H
#define CRIER_CLI_H

/* cli_main - parse and run one command; returns a sysexits.h exit code. */
int cli_main(int argc, char **argv);

#endif
