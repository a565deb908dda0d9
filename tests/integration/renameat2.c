/*
 * tests/integration/renameat2.c - renameat2(2) from the shell, for
 * tests/integration/links.sh (RENAME_EXCHANGE and its error paths).
 *
 * Usage: renameat2 FLAGS SRC DST, FLAGS a sum of "exchange", "noreplace",
 * "whiteout" joined by '+', or a number.  Calls the system call directly
 * (glibc's wrapper is recent).  Exit 0 on success; otherwise prints the
 * errno name (e.g. "ENOENT") on stdout and exits 1; 2 for bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif

static int parse_flags(const char *s, unsigned *out)
{
	char buf[128], *save = NULL;
	unsigned f = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *w = strtok_r(buf, "+", &save); w; w = strtok_r(NULL, "+", &save)) {
		char *end;
		if (strcmp(w, "exchange") == 0)
			f |= RENAME_EXCHANGE;
		else if (strcmp(w, "noreplace") == 0)
			f |= RENAME_NOREPLACE;
		else if (strcmp(w, "whiteout") == 0)
			f |= RENAME_WHITEOUT;
		else if ((f |= (unsigned)strtoul(w, &end, 0)), *end)
			return -1;
	}
	*out = f;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned flags;

	if (argc != 4 || parse_flags(argv[1], &flags) != 0) {
		fprintf(stderr, "usage: renameat2 exchange|noreplace|whiteout|N[+...] SRC DST\n");
		return 2;
	}
	if (syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3], flags) != 0) {
		int e = errno;
		const char *n = strerrorname_np(e);
		printf("%s\n", n ? n : "E?");
		return 1;
	}
	return 0;
}
