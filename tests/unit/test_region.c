/*
 * test_region.c - regions kept across an exec (keep_region, region_fd):
 * a cache without a store lives in a memfd; handing the fd to a new
 * cache (what the plugin does across uWSGI's re-exec) keeps every item
 * and its expiry; a new geometry imports what fits; a damaged region
 * starts empty; without keep_region nothing is kept.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ucache_test.h"

static ucache_t *create(const char *keyval, int fd)
{
	struct ucache_config cfg;
	char err[1024];
	ucache_t *c;

	assert_int_equal(ucache_config_parse(&cfg, keyval, err, sizeof(err)), 0);
	cfg.keep_region = 1;
	cfg.region_fd = fd;
	c = ucache_create(&cfg, err, sizeof(err));
	ucache_config_free(&cfg);
	if (!c)
		fail_msg("create: %s", err);
	return c;
}

/* What the master does before its exec: take the fd, close the cache. */
static int hand_over(ucache_t *c)
{
	int fd = ucache_release_region(c);

	assert_true(fd > 2);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ucache_close(c);
	return fd;
}

static void reload_keeps_items_and_expiry(void **state)
{
	ucache_t *c = create("name=r,items=100,blocksize=256", 0);
	uint64_t exp;
	int fd;

	(void)state;
	ut_set_k(c, 0, 50, NULL, 0);
	assert_int_equal(ut_set(c, "exp", "soon", 100, 0), 0);
	exp = ut_expires_of(c, "exp");
	fd = hand_over(c);
	ut_log_reset();
	c = create("name=r,items=100,blocksize=256", fd);
	assert_int_equal(ucache_items(c), 51);
	ut_expect_k(c, 0, 50);
	ut_expect(c, "exp", "soon");
	assert_int_equal(ut_expires_of(c, "exp"), exp);
	assert_int_equal(ut_log_count("the reload kept 51 items, dropped 0"), 1);
	ut_check(c);
	assert_int_equal(ut_set(c, "new", "v", 0, 0), 0);
	ucache_close(c);
}

static void new_geometry_imports_what_fits(void **state)
{
	ucache_t *c = create("name=r,items=100,blocksize=256", 0);
	int fd;

	(void)state;
	ut_set_k(c, 0, 80, NULL, 0);
	fd = hand_over(c);
	ut_log_reset();
	c = create("name=r,items=41,blocksize=256", fd);
	assert_int_equal(ucache_items(c), 40);
	assert_int_equal(ut_log_count("imported 40 items, 40 did not fit"), 1);
	assert_int_equal(ut_log_count("items=100"), 1);
	ut_check(c);
	ucache_close(c);
}

static void damaged_region_starts_empty(void **state)
{
	ucache_t *c = create("name=r,items=100", 0);
	int fd;

	(void)state;
	ut_set_k(c, 0, 10, NULL, 0);
	fd = hand_over(c);
	assert_int_equal(pwrite(fd, "garbage!", 8, 0), 8);
	ut_log_reset();
	c = create("name=r,items=100", fd);
	assert_int_equal(ucache_items(c), 0);
	assert_int_equal(ut_log_count("starting empty"), 1);
	ut_check(c);
	ucache_close(c);
}

static void without_a_handover_nothing_is_kept(void **state)
{
	ucache_t *c = create("name=r,items=100", 0);

	(void)state;
	ut_set_k(c, 0, 10, NULL, 0);
	ucache_close(c);  /* a full stop: the memfd is closed with the handle */
	c = create("name=r,items=100", 0);
	assert_int_equal(ucache_items(c), 0);
	ucache_close(c);
	assert_int_equal(ucache_release_region(NULL), -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup, ut_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(reload_keeps_items_and_expiry),
		T(new_geometry_imports_what_fits),
		T(damaged_region_starts_empty),
		T(without_a_handover_nothing_is_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
