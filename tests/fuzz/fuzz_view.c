/*
 * fuzz_view.c - libFuzzer target for read-only views (core/view.c): the
 * code an nginx worker runs over a store file it does not trust.
 *
 * Input: a whole store image (the seeds in tests/fuzz/view-corpus/ are
 * real small stores, make_view_corpus.c).  It is written to a memfd and
 * opened by path (/proc/self/fd/N) with ucache_view_open, as nginx opens
 * the store; when the view opens, the corpus's keys are read through it
 * (ucache_view_get, with a buffer large enough and one too small) and
 * ucache_view_replaced is asked.  Mutations of the header are judged at
 * open; mutations of the region (buckets, slots, key heap, values, tag
 * table, seqs) reach the lock-free read path.  Most of libFuzzer's
 * mutations shorten the input, which the view then refuses as truncated:
 * an input of odd size is padded with zeros up to its header's total (at
 * most 64 MiB), so those mutations still reach the reads; even sizes keep
 * testing the refusal.
 *
 * Checked besides memory safety (a violation is __builtin_trap()): every
 * result is an enum ucache_view_status; a HIT's length fits the buffer; a
 * NOBUFS's needed size is larger than the buffer given; an open that fails
 * says why in err.
 *
 * Built two ways by the Makefile: with -fsanitize=fuzzer for `make
 * fuzz-view`, and with replay.c's main() for `make fuzz-regress`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layout.h"
#include "ucache.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* The keys make_view_corpus.c stores (and a few it does not). */
static const char *const keys[] = { "k1", "k2", "page", "tagged", "stale", "expired", "big", "absent", "" };

static void quiet(enum ucache_log_level level, const char *msg, void *ud)
{
	(void)level;
	(void)msg;
	(void)ud;
}

static void read_key(ucache_view_t *v, const char *k)
{
	static char buf[70000];
	struct ucache_item_info info;
	size_t len = 0, small = 3;
	int rc = ucache_view_get(v, k, strlen(k), buf, sizeof(buf), &len, &info);

	CHECK(rc >= UCACHE_VIEW_HIT && rc <= UCACHE_VIEW_NOBUFS);
	if (rc == UCACHE_VIEW_HIT)
		CHECK(len <= sizeof(buf));
	if (rc == UCACHE_VIEW_NOBUFS)
		CHECK(len > sizeof(buf));
	len = 0;
	rc = ucache_view_get(v, k, strlen(k), buf, small, &len, NULL);
	CHECK(rc >= UCACHE_VIEW_HIT && rc <= UCACHE_VIEW_NOBUFS);
	if (rc == UCACHE_VIEW_HIT)
		CHECK(len <= small);
	if (rc == UCACHE_VIEW_NOBUFS)
		CHECK(len > small);
}

/* Zeros up to the total the input's header claims (odd sizes only). */
static void pad(int fd, const uint8_t *data, size_t size)
{
	uint64_t total;

	if (!(size & 1) || size < offsetof(struct uc_hdr, total) + sizeof(total))
		return;
	memcpy(&total, data + offsetof(struct uc_hdr, total), sizeof(total));
	if (total > size && total <= (64u << 20))
		CHECK(ftruncate(fd, (off_t)total) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-view", MFD_CLOEXEC);
	char path[64], err[1024] = "";
	ucache_view_t *v;
	size_t i;

	ucache_set_logger(quiet, NULL);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	pad(fd, data, size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	v = ucache_view_open(path, err, sizeof(err));
	if (!v) {
		CHECK(err[0] != 0);
		close(fd);
		return 0;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		read_key(v, keys[i]);
	CHECK(ucache_view_replaced(v) == 0);
	ucache_view_close(v);
	close(fd);
	return 0;
}
