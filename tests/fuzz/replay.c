/*
 * replay.c - run a fuzz target (fuzz_proto.c or fuzz_udp.c) over files,
 * without libFuzzer: the regression corpora (tests/fuzz/regressions/,
 * tests/fuzz/udp-regressions/) and the seed corpora, under ASan+UBSan, in
 * `make test`.  Arguments are files or directories (their
 * regular files, not recursively).  Exit status 0 if every input ran; a
 * crash or a sanitizer report aborts.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto fail;
	buf = malloc(n ? (size_t) n : 1);
	if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n)
		goto fail;
	LLVMFuzzerTestOneInput(buf, (size_t) n);
	free(buf);
	fclose(f);
	return 0;
fail:
	perror(path);
	free(buf);
	if (f)
		fclose(f);
	return -1;
}

static int run_path(const char *path, unsigned *count)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	if (stat(path, &st))
		return run_file(path);
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	d = opendir(path);
	if (!d)
		return run_file(path);
	while ((de = readdir(d))) {
		char full[4096];
		if (de->d_name[0] == '.')
			continue;
		snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
			(*count)++;
			ret |= run_file(full);
		}
	}
	closedir(d);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int i, ret = 0;

	for (i = 1; i < argc; i++)
		ret |= run_path(argv[i], &count);
	printf("%s: %u inputs replayed%s\n", argv[0], count, ret ? ", some unreadable" : "");
	return ret ? 1 : 0;
}
