/*
 * test_storefile.c - the store's file on disk (core/storefile.c, issue 18):
 * a symbolic link is never followed (store_delete, store_migrate's
 * FILE.migrate), a file with two names is refused as root, a new store is
 * chowned to the user the processes drop to (store_uid/store_gid) and an
 * existing one that user cannot write is refused naming owner, mode and
 * uid, and the whole file is allocated (no sparse holes a full filesystem
 * turns into SIGBUS).  The ownership cases need root and are skipped
 * otherwise.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "ucache_test.h"

#define NOBODY 65534u
#define SECRET "a root-owned file that must stay intact\n"

static char dir[128], path[256], target[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/ucache-test-storefile-%d", (int)getpid());
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/c.store", dir);
	snprintf(target, sizeof(target), "%s/precious", dir);
	return ut_setup_real_clock(state);
}

static int teardown(void **state)
{
	char tmp[300];

	unlink(path);
	unlink(target);
	snprintf(tmp, sizeof(tmp), "%s.migrate", path);
	unlink(tmp);
	rmdir(dir);
	return ut_teardown(state);
}

/* ucache_create of keyval + ",store=PATH" for uid:gid; NULL with err. */
static ucache_t *open_as(const char *keyval, unsigned uid, unsigned gid, char *err, size_t errlen)
{
	struct ucache_config cfg;
	char kv[512];
	ucache_t *c;

	snprintf(kv, sizeof(kv), "%s,store=%s", keyval, path);
	assert_int_equal(ucache_config_parse(&cfg, kv, err, errlen), 0);
	cfg.store_uid = uid;
	cfg.store_gid = gid;
	c = ucache_create(&cfg, err, errlen);
	ucache_config_free(&cfg);
	return c;
}

static void write_target(void)
{
	int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, SECRET, strlen(SECRET)), (ssize_t)strlen(SECRET));
	close(fd);
}

static void assert_target_intact(void)
{
	char buf[128] = "";
	int fd = open(target, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(SECRET));
	close(fd);
	assert_string_equal(buf, SECRET);
}

static void symlink_never_followed(void **state)
{
	char err[1024] = "";

	(void)state;
	write_target();
	assert_int_equal(symlink(target, path), 0);
	assert_null(open_as("name=s,items=10,blocksize=64,store_delete=1", 0, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "is a symbolic link"));
	assert_target_intact();
}

static void migrate_temporary_symlink_removed_not_followed(void **state)
{
	char err[1024] = "", tmp[300];
	struct stat st;
	ucache_t *c = open_as("name=s,items=10,blocksize=64", 0, 0, err, sizeof(err));

	(void)state;
	assert_non_null(c);
	assert_int_equal(ucache_set(c, "k", 1, "v", 1, 0, 0), 0);
	ucache_close(c);
	write_target();
	snprintf(tmp, sizeof(tmp), "%s.migrate", path);
	assert_int_equal(symlink(target, tmp), 0);
	c = open_as("name=s,items=20,blocksize=64,store_migrate=1", 0, 0, err, sizeof(err));
	assert_non_null(c);
	ut_expect(c, "k", "v");
	ucache_close(c);
	assert_target_intact();
	assert_int_equal(lstat(tmp, &st), -1);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void second_name_refused_as_root(void **state)
{
	char err[1024] = "";

	(void)state;
	if (geteuid() != 0)
		skip();
	write_target();
	assert_int_equal(link(target, path), 0);
	assert_null(open_as("name=s,items=10,blocksize=64,store_delete=1", 0, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "has 2 hard links"));
	assert_target_intact();
}

static void new_store_belongs_to_the_final_user(void **state)
{
	char err[1024] = "";
	struct stat st;
	ucache_t *c;

	(void)state;
	if (geteuid() != 0)
		skip();
	c = open_as("name=s,items=10,blocksize=64", NOBODY, NOBODY, err, sizeof(err));
	assert_non_null(c);
	ucache_close(c);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, NOBODY);
	assert_int_equal(st.st_gid, NOBODY);
	/* reopened by the same root for the same user: accepted */
	c = open_as("name=s,items=10,blocksize=64", NOBODY, NOBODY, err, sizeof(err));
	assert_non_null(c);
	ucache_close(c);
}

static void store_the_final_user_cannot_write_refused(void **state)
{
	char err[1024] = "";
	ucache_t *c;

	(void)state;
	if (geteuid() != 0)
		skip();
	c = open_as("name=s,items=10,blocksize=64", 0, 0, err, sizeof(err)); /* root's, 0600 */
	assert_non_null(c);
	ucache_close(c);
	assert_null(open_as("name=s,items=10,blocksize=64", NOBODY, NOBODY, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "owned by uid 0 gid 0 with mode 0600"));
	assert_non_null(strstr(err, "uid 65534 gid 65534"));
	/* group read-write for its group is enough */
	assert_int_equal(chown(path, 0, NOBODY), 0);
	assert_int_equal(chmod(path, 0660), 0);
	c = open_as("name=s,items=10,blocksize=64", NOBODY, NOBODY, err, sizeof(err));
	assert_non_null(c);
	ucache_close(c);
}

/* Every byte backed: no hole left for a full filesystem to fault on. */
static void whole_file_allocated(void **state)
{
	char err[1024] = "";
	struct stat st;
	ucache_t *c = open_as("name=s,items=40,blocksize=4096", 0, 0, err, sizeof(err));

	(void)state;
	assert_non_null(c);
	assert_int_equal(stat(path, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size);
	ucache_close(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(symlink_never_followed),
		T(migrate_temporary_symlink_removed_not_followed),
		T(second_name_refused_as_root),
		T(new_store_belongs_to_the_final_user),
		T(store_the_final_user_cannot_write_refused),
		T(whole_file_allocated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
