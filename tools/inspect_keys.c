/*
 * inspect_keys.c - `ucache-inspect keys`: list the keys of a store file
 * (through the engine, read-only) or of a live cache (over modifier1 111,
 * inspect_remote.c) with their value sizes and seconds left, filtered by a
 * glob pattern; or only the N biggest values, in the spirit of
 * `redis-cli --bigkeys`.
 *
 *   ucache-inspect keys [--biggest N] [-n MAX] [PATTERN] STORE_FILE
 *   ucache-inspect keys -s ADDR [-c CACHE] [-b BATCH] [--biggest N] [-n MAX] [PATTERN]
 *
 * Output: one line per key, "KEY<TAB>SIZE<TAB>TTL" (TTL: seconds left, or
 * "never"), bytes of the key that are not printable as \xHH; PATTERN
 * (fnmatch(3)) is matched against the key as printed.  A summary line goes
 * to stderr, so stdout is the listing alone.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "inspect.h"
#include "proto.h"
#include "ucache.h"

struct listing {
	const char *pattern;
	long max;                /* stop after this many matches */
	long biggest;            /* 0: print each match; N: keep the N biggest */
	uint64_t seen, matched, bytes;
	struct kept *top;        /* biggest: up to `biggest` entries, unsorted */
	long ntop;
	char *printed;           /* the key as printed (pattern matching) */
	size_t printed_cap;
};

struct kept {
	unsigned char *key;
	size_t klen;
	uint64_t vlen;
	int64_t ttl;
};

void ik_print_escaped(FILE *out, const unsigned char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			fputc(s[i], out);
		else
			fprintf(out, "\\x%02x", s[i]);
}

const char *ik_ttl_str(int64_t ttl, char *buf, size_t len)
{
	if (ttl < 0)
		return "never";
	snprintf(buf, len, "%" PRId64, ttl);
	return buf;
}

static void print_entry(const unsigned char *key, size_t klen, uint64_t vlen, int64_t ttl)
{
	char t[24];

	ik_print_escaped(stdout, key, klen);
	printf("\t%" PRIu64 "\t%s\n", vlen, ik_ttl_str(ttl, t, sizeof(t)));
}

/* Does the key, as printed, match the pattern?  -1: out of memory. */
static int matches(struct listing *l, const struct ik_entry *e)
{
	FILE *f;

	if (!l->pattern)
		return 1;
	f = fmemopen(l->printed, l->printed_cap, "w");
	if (!f)
		return -1;
	ik_print_escaped(f, e->key, e->klen);
	fputc('\0', f);
	fclose(f);
	return fnmatch(l->pattern, l->printed, 0) == 0;
}

/* --biggest: replace the smallest kept entry when e is bigger (N is small:
 * a linear scan per replacement). */
static int keep_if_big(struct listing *l, const struct ik_entry *e)
{
	long i, victim = l->ntop;
	unsigned char *copy;

	if (l->ntop == l->biggest) {
		for (victim = 0, i = 1; i < l->ntop; i++)
			if (l->top[i].vlen < l->top[victim].vlen)
				victim = i;
		if (l->top[victim].vlen >= e->vlen)
			return 0;
		free(l->top[victim].key);
	} else {
		l->ntop++;
	}
	copy = malloc(e->klen);
	if (!copy)
		return -1;
	memcpy(copy, e->key, e->klen);
	l->top[victim] = (struct kept){ copy, e->klen, e->vlen, e->ttl };
	return 0;
}

static int on_entry(void *ctx, const struct ik_entry *e)
{
	struct listing *l = ctx;
	int m = matches(l, e);

	l->seen++;
	if (m < 0)
		return -1;
	if (!m)
		return 0;
	l->matched++;
	l->bytes += e->vlen;
	if (!l->biggest)
		print_entry(e->key, e->klen, e->vlen, e->ttl);
	else if (keep_if_big(l, e))
		return -1;
	return l->max > 0 && l->matched >= (uint64_t) l->max;
}

static int by_size_desc(const void *a, const void *b)
{
	const struct kept *x = a, *y = b;

	return x->vlen < y->vlen ? 1 : x->vlen > y->vlen ? -1 : 0;
}

static void print_biggest(struct listing *l)
{
	long i;

	qsort(l->top, (size_t) l->ntop, sizeof(*l->top), by_size_desc);
	for (i = 0; i < l->ntop; i++) {
		print_entry(l->top[i].key, l->top[i].klen, l->top[i].vlen, l->top[i].ttl);
		free(l->top[i].key);
	}
}

/* Walk a store file's keys: the iterator, then a zero-length peek for the
 * value's size and expiry (no copy, no hit counted). */
static int store_each(const char *path, ik_fn fn, void *ctx, char *err, size_t errlen)
{
	struct ucache_store_info info;
	ucache_t *c = ucache_open_store_readonly(path, &info, err, errlen);
	size_t bufsize, klen, vlen;
	unsigned char *key;
	uint64_t cursor = 0, now = ucache_now();
	int rc = 0;

	if (!c)
		return -1;
	bufsize = ucache_config(c)->keysize + 1;
	key = malloc(bufsize);
	while (key && rc == 0 && ucache_iter(c, &cursor, key, bufsize, &klen) == 0) {
		struct ucache_item_info ii = { 0 };
		struct ik_entry e = { key, klen, 0, -1 };

		if (ucache_peek(c, key, klen, NULL, 0, &vlen, &ii) != -ENOBUFS)
			continue;  /* expired since the iterator saw it */
		e.vlen = vlen;
		if (ii.expires)
			e.ttl = ii.expires > now ? (int64_t) (ii.expires - now) : 1;
		rc = fn(ctx, &e);
	}
	if (!key || rc < 0)
		snprintf(err, errlen, "out of memory");
	free(key);
	ucache_destroy(c);
	return !key || rc < 0 ? -1 : 0;
}

static int usage(FILE *out, int status)
{
	fprintf(out,
		"usage: ucache-inspect keys [--biggest N] [-n MAX] [PATTERN] STORE_FILE\n"
		"       ucache-inspect keys -s ADDR [-c CACHE] [-b BATCH] [--biggest N] [-n MAX] [PATTERN]\n"
		"  list keys: KEY<TAB>VALUE_SIZE<TAB>TTL (seconds left, or never)\n"
		"  PATTERN          a glob (fnmatch), matched against the key as printed\n"
		"  -s, --socket ADDR  a live uWSGI's modifier1 111 socket: host:port or a unix path\n"
		"  -c, --cache NAME   with -s: the cache (default: the instance's default cache)\n"
		"  -b, --batch N      with -s: keys per request (default %d, at most %d)\n"
		"  --biggest N        only the N biggest values, largest first\n"
		"  -n MAX             stop after MAX matching keys\n",
		UCP_KEYS_COUNT, UCP_KEYS_COUNT_MAX);
	return status;
}

/* A positive decimal option value, or -1 (with a message naming it). */
static long positive(const char *opt, const char *v, long max)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 1 || n > max) {
		fprintf(stderr, "ucache-inspect keys: %s %s: want a number from 1 to %ld\n", opt, v, max);
		return -1;
	}
	return n;
}

struct keys_opts {
	const char *socket, *cache, *pattern, *store;
	long batch, biggest, max;
};

/* 0, or the exit status of a bad command line (2), or -1 for --help. */
static int parse_opts(int argc, char **argv, struct keys_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' }, { "cache", required_argument, NULL, 'c' },
		{ "batch", required_argument, NULL, 'b' }, { "biggest", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int opt, npos;

	*o = (struct keys_opts){ .batch = UCP_KEYS_COUNT };
	while ((opt = getopt_long(argc, argv, "s:c:b:n:h", longopts, NULL)) != -1) {
		if (opt == 'h')
			return -1;
		if (opt == 's' || opt == 'c')
			*(opt == 's' ? &o->socket : &o->cache) = optarg;
		else if (opt == 'b' && (o->batch = positive("--batch", optarg, UCP_KEYS_COUNT_MAX)) < 0)
			return 2;
		else if (opt == 'B' && (o->biggest = positive("--biggest", optarg, 1000000)) < 0)
			return 2;
		else if (opt == 'n' && (o->max = positive("-n", optarg, LONG_MAX)) < 0)
			return 2;
		else if (opt == '?')
			return usage(stderr, 2);
	}
	npos = argc - optind;
	if (o->socket ? npos > 1 : npos < 1 || npos > 2) {
		fprintf(stderr, "ucache-inspect keys: want [PATTERN] and %s\n",
			o->socket ? "nothing else with --socket" : "a STORE_FILE (or --socket ADDR)");
		return usage(stderr, 2);
	}
	if (o->cache && !o->socket) {
		fprintf(stderr, "ucache-inspect keys: --cache names a cache of a live instance: give --socket\n");
		return 2;
	}
	o->store = o->socket ? NULL : argv[argc - 1];
	o->pattern = npos == (o->socket ? 1 : 2) ? argv[optind] : NULL;
	return 0;
}

int ik_main(int argc, char **argv)
{
	struct keys_opts o;
	struct listing l = { 0 };
	char err[1024] = "";
	int rc = parse_opts(argc, argv, &o);

	if (rc)
		return rc < 0 ? usage(stdout, 0) : rc;
	l = (struct listing){ .pattern = o.pattern, .max = o.max, .biggest = o.biggest };
	l.printed_cap = 4 * UCP_KEY_MAX + 2;
	l.printed = malloc(l.printed_cap);
	l.top = o.biggest ? calloc((size_t) o.biggest, sizeof(*l.top)) : NULL;
	if (!l.printed || (o.biggest && !l.top)) {
		fprintf(stderr, "ucache-inspect keys: out of memory\n");
		return 2;
	}
	rc = o.socket ? ik_remote_each(o.socket, o.cache, (unsigned) o.batch, on_entry, &l, err, sizeof(err))
		      : store_each(o.store, on_entry, &l, err, sizeof(err));
	print_biggest(&l);
	if (rc)
		fprintf(stderr, "ucache-inspect keys: %s: %s\n", o.socket ? o.socket : o.store, err);
	fprintf(stderr, "ucache-inspect keys: %" PRIu64 " keys, %" PRIu64 " matched, %" PRIu64 " value bytes\n",
		l.seen, l.matched, l.bytes);
	free(l.top);
	free(l.printed);
	return rc ? 2 : 0;
}
