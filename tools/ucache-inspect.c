/*
 * ucache-inspect - look inside a ucache store file without touching it:
 * geometry, item count, shutdown state, the full invariant check, and
 * optionally the keys (and values) it holds; or list the keys of a store
 * or of a live cache (inspect_keys.c).  The correct counterpart of stock
 * uWSGI's contrib/uwsgi-cache-monitor.py.
 *
 *   ucache-inspect [-k] [-v] [-n MAX] FILE
 *   ucache-inspect keys [OPTIONS] [PATTERN] (FILE | --socket ADDR)
 *   ucache-inspect --help | --version
 *
 * Times left are printed as seconds left (or "never"), not as epochs.
 * Exit status: 0 the store is consistent, 1 the invariant check failed
 * (the next open will repair it, dropping damaged items), 2 the file is
 * missing or not a ucache store, or a bad command line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inspect.h"
#include "ucache.h"

static void print_geometry(ucache_t *c, const struct ucache_store_info *info)
{
	const struct ucache_config *cfg = ucache_config(c);
	struct ucache_stats st;
	time_t created = (time_t)info->created_at;

	ucache_stats(c, &st);
	printf("cache:       %s\n", cfg->name);
	printf("geometry:    items=%llu blocks=%llu blocksize=%llu keysize=%llu hash=%s mode=%s buckets=%llu\n",
	       (unsigned long long)cfg->items, (unsigned long long)cfg->blocks, (unsigned long long)cfg->blocksize,
	       (unsigned long long)cfg->keysize, ucache_hash_name(cfg->hash), cfg->bitmap ? "bitmap" : "single-block",
	       (unsigned long long)cfg->hashsize);
	printf("file:        %llu bytes on disk, %llu mapped\n", (unsigned long long)info->file_size,
	       (unsigned long long)st.mapped_bytes);
	printf("created:     %s", ctime(&created));
	printf("opened:      %u times, last shutdown %s\n", info->opens, info->clean ? "clean" : "unclean (or still open)");
	printf("items:       %llu of %llu usable, %llu value bytes\n", (unsigned long long)st.items,
	       (unsigned long long)st.capacity, (unsigned long long)st.bytes_used);
	printf("counters:    hits=%llu misses=%llu full=%llu evictions=%llu expirations=%llu\n",
	       (unsigned long long)st.hits, (unsigned long long)st.misses, (unsigned long long)st.full,
	       (unsigned long long)st.evictions, (unsigned long long)st.expirations);
}

static void print_value(const unsigned char *val, size_t vlen, const struct ucache_item_info *info,
			uint64_t now)
{
	int64_t ttl = !info->expires ? -1 : info->expires > now ? (int64_t)(info->expires - now) : 1;
	char t[24];

	printf(" = ");
	ik_print_escaped(stdout, val, vlen < 256 ? vlen : 256);
	printf("%s (%zu bytes, ttl %s)", vlen > 256 ? "..." : "", vlen, ik_ttl_str(ttl, t, sizeof(t)));
}

static void list_keys(ucache_t *c, int values, long max)
{
	size_t bufsize = ucache_config(c)->keysize + 1, klen, vlen;
	unsigned char *key = malloc(bufsize);
	uint64_t cursor = 0, now = ucache_now();
	long n = 0;

	while (key && n < max && ucache_iter(c, &cursor, key, bufsize, &klen) == 0) {
		struct ucache_item_info info;
		void *val = values ? ucache_get_alloc(c, key, klen, &vlen, &info) : NULL;
		ik_print_escaped(stdout, key, klen);
		if (val)
			print_value(val, vlen, &info, now);
		putchar('\n');
		free(val);
		n++;
	}
	free(key);
}

static int usage(FILE *out, const char *argv0, int status)
{
	fprintf(out, "usage: %s [-k] [-v] [-n MAX] STORE_FILE\n"
		"       %s keys [OPTIONS] [PATTERN] (STORE_FILE | --socket ADDR)   (keys --help)\n"
		"       %s --help | --version\n"
		"  check a store file and print its geometry and counters\n"
		"  -k  list keys   -v  list keys and values (ttl: seconds left)   -n  at most MAX keys\n"
		"  keys: key, value size and seconds left of a store or a live cache\n",
		argv0, argv0, argv0);
	return status;
}

int main(int argc, char **argv)
{
	struct ucache_store_info info;
	int opt, keys = 0, values = 0, rc;
	long max = 1000000;
	char err[1024];
	ucache_t *c;
	static const struct option longopts[] = {
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	if (argc > 1 && !strcmp(argv[1], "keys"))
		return ik_main(argc - 1, argv + 1);
	while ((opt = getopt_long(argc, argv, "kvn:h", longopts, NULL)) != -1) {
		if (opt == 'V') {
			printf("ucache-inspect %s\n", UCACHE_VERSION);
			return 0;
		}
		if (opt == 'h')
			return usage(stdout, argv[0], 0);
		if (opt == 'k')
			keys = 1;
		else if (opt == 'v')
			keys = values = 1;
		else if (opt == 'n')
			max = strtol(optarg, NULL, 10);
		else
			return usage(stderr, argv[0], 2);
	}
	if (optind != argc - 1)
		return usage(stderr, argv[0], 2);
	c = ucache_open_store_readonly(argv[optind], &info, err, sizeof(err));
	if (!c) {
		fprintf(stderr, "ucache-inspect: %s\n", err);
		return 2;
	}
	print_geometry(c, &info);
	rc = ucache_check(c, err, sizeof(err));
	printf("check:       %s%s\n", rc ? "FAILED: " : "ok", rc ? err : "");
	if (keys)
		list_keys(c, values, max);
	ucache_destroy(c);
	return rc ? 1 : 0;
}
