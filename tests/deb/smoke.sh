#!/usr/bin/env bash
# tests/deb/smoke.sh - check the installed uwsgi-plugin-ucache package from
# its installed files only: run from a scratch directory outside the
# checkout, with no PYTHONPATH, loading the plugin by name.  .ci/run runs it
# between `apt-get install ./build/deb/*.deb` and removing the package.
#
# Checks, each failing with one line naming what was wrong:
#   - the package is installed at the checkout's VERSION and dpkg -L lists
#     the plugin, ucache-inspect, its man page and the Python package;
#   - `uwsgi --plugin python3,ucache --cache2 ...` starts, its start-up line
#     names the version, and an app's cache_set/cache_get round-trips;
#   - `import ucache` inside uwsgi (Debian's python3) loads the installed
#     package and ucache.__version__ is VERSION (when the checkout has
#     python/ucache/; without it the package ships none and the import fails);
#   - the stats server reports ucache_version;
#   - the wheel in /usr/share/uwsgi-plugin-ucache/ installs offline into a
#     fresh venv (python3 -m venv), whose python imports ucache from it;
#   - ucache-inspect --version, and the man page renders;
#   - ucache-top -b (installed in /usr/bin) shows the cache's row.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/../.." && pwd)
version=$(cat "$checkout/VERSION")
pkg=uwsgi-plugin-ucache
pydir=/usr/lib/python3/dist-packages/ucache
man1=/usr/share/man/man1/ucache-inspect.1.gz

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
ok() { echo "smoke: ok: $*"; }
# shellcheck source=tests/deb/lib.sh
. "$checkout/tests/deb/lib.sh"

unset PYTHONPATH PYTHONHOME
scratch=$(mktemp -d /tmp/ucache-smoke.XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -INT "$pid"
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$scratch"
}
trap cleanup EXIT
cd "$scratch"

# ---------------------------------------------------------------- dpkg
files=$(installed_files "$pkg" "$version")
want=(/usr/lib/uwsgi/plugins/ucache_plugin.so /usr/bin/ucache-inspect "$man1" /usr/share/doc/$pkg/copyright
	/usr/bin/ucache-top /usr/share/man/man1/ucache-top.1.gz)
with_python=
if [ -d "$checkout/python/ucache" ]; then
	with_python=1
	wheel=/usr/share/$pkg/ucache-${version//\~/}-py3-none-any.whl
	want+=("$pydir/__init__.py" "$pydir/_version.py" "$wheel")
fi
for f in "${want[@]}"; do
	grep -qx -- "$f" <<<"$files" || fail "dpkg -L $pkg does not list $f"
	[ -f "$f" ] || fail "$f is listed by dpkg -L but missing"
done
ok "$pkg $version installed, dpkg -L lists ${want[*]}"

# ----------------------------------------------------------- the tool
[ "$(command -v ucache-inspect)" = /usr/bin/ucache-inspect ] ||
	fail "ucache-inspect on PATH is '$(command -v ucache-inspect || true)', want /usr/bin/ucache-inspect"
out=$(ucache-inspect --version)
[ "$out" = "ucache-inspect $version" ] || fail "ucache-inspect --version printed '$out'"
ok "ucache-inspect --version: $out"

if command -v man >/dev/null; then
	page=$(LC_ALL=C MANWIDTH=80 man -l "$man1" 2>/dev/null || true)
else
	page=$(zcat "$man1")
fi
grep -q 'ucache-inspect.*look inside a ucache store file' <<<"$page" ||
	fail "the man page $man1 does not render its NAME line"
ok "man page renders ($man1)"

# -------------------------------------------------------------- uwsgi
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
sport=$(free_port)
cat > app.py <<'EOF'
import uwsgi
try:
    import ucache
    found = '%s %s' % (ucache.__version__, ucache.__file__)
except ImportError as e:
    found = 'ImportError: %s' % e


def application(env, start_response):
    uwsgi.cache_set('smoke', b'round-trip', 0, 'a')
    got = uwsgi.cache_get('smoke', 'a')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%s %s' % (got.decode() if got else None, found)).encode()]
EOF
uwsgi --plugin python3,ucache --master --http-socket "127.0.0.1:$port" \
	--stats "127.0.0.1:$sport" --stats-http --cache2 name=a,items=100 --wsgi-file app.py \
	> uwsgi.log 2>&1 &
pid=$!

get() {
	python3 - "$1" <<'EOF'
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
except OSError:
    sys.exit(1)
EOF
}
# the caches' ucache_version keys from the stats server (--stats-http: JSON over HTTP)
stats() {
	get "http://127.0.0.1:$sport/" | python3 -c 'import json, sys
print(" ".join(c.get("ucache_version", "-") for c in json.load(sys.stdin)["caches"]))' 2>/dev/null
}

body=
for _ in $(seq 200); do
	kill -0 "$pid" 2>/dev/null || { cat uwsgi.log >&2; fail "uwsgi --plugin python3,ucache exited at start"; }
	body=$(get "http://127.0.0.1:$port/") && break
	sleep 0.05
done
[ -n "$body" ] || { cat uwsgi.log >&2; fail "uwsgi did not answer on port $port within 10 s"; }

line=$(grep -m1 'cache entry points redirected' uwsgi.log || true)
grep -qF "(ucache $version for uWSGI " <<<"$line" ||
	{ cat uwsgi.log >&2; fail "start-up line does not name ucache $version: '$line'"; }
grep -q '^\*\*\* ucache "a" initialized' uwsgi.log ||
	{ cat uwsgi.log >&2; fail "no '*** ucache \"a\" initialized' line"; }
ok "uwsgi --plugin python3,ucache started: $line"

if [ -n "$with_python" ]; then
	want="round-trip $version $pydir/__init__.py"
	[ "$body" = "$want" ] || fail "the app answered '$body', want '$want'"
	ok "cache_set/cache_get round-trip, import ucache: __version__ $version from $pydir"
else
	want="round-trip ImportError: No module named 'ucache'"
	[ "$body" = "$want" ] || fail "the app answered '$body', want '$want' (no python/ucache/)"
	ok "cache_set/cache_get round-trip (no python/ucache/ in the checkout: import ucache fails as it should)"
fi

got=
for _ in $(seq 200); do
	got=$(stats) && break
	sleep 0.05
done
[ "$got" = "$version" ] || fail "the stats server's caches report ucache_version '$got', want '$version'"
ok "stats: ucache_version $got"

# ucache-top from /usr/bin, over --stats-http: a row for cache a
top=$(ucache-top -b -d 0.2 "http://127.0.0.1:$sport/") || fail "ucache-top -b failed: $top"
grep -q '^a  *[0-9]' <<<"$top" || fail "ucache-top -b shows no row for cache a: $top"
ok "ucache-top -b shows cache a"

# --------------------------------------------------------------- venv
if [ -n "$with_python" ]; then
	python3 -m venv "$scratch/venv" || fail "python3 -m venv failed (is python3-venv installed?)"
	"$scratch/venv/bin/pip" install --quiet --no-index "$wheel" ||
		fail "pip install --no-index $wheel into a venv failed"
	got=$("$scratch/venv/bin/python" -c 'import ucache; print(ucache.__version__, ucache.__file__)') ||
		fail "import ucache in the venv failed"
	case "$got" in
	"${version//\~/} $scratch/venv/lib/python3"*"/site-packages/ucache/__init__.py") ;;
	*) fail "the venv's python imports '$got', want ucache ${version//\~/} from $scratch/venv" ;;
	esac
	ok "the wheel installs offline into a venv: $got"
fi

echo "smoke: all checks passed for $pkg $version"
