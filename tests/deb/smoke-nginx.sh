#!/usr/bin/env bash
# tests/deb/smoke-nginx.sh - check the installed libnginx-mod-http-ucache
# package end to end from installed files only: the cache is written by the
# installed uwsgi-plugin-ucache (its Python package's Accelerator stores the
# page), read by a real nginx that loads the module through the package's
# snippet.  .ci/run runs it between `apt-get install` of both .debs and
# their purge.  Root only (nginx's workers and uwsgi run as www-data, as a
# Debian deployment does: the store ucache creates 0600 for that user is
# then readable by nginx's workers).  nginx runs on a free loopback port
# with its own prefix and configuration, never the system service.
#
# Checks, each failing with one line naming what was wrong:
#   - the package is installed at the checkout's VERSION, dpkg -L lists the
#     module and the modules-available snippet, and the postinst enabled it
#     (/etc/nginx/modules-enabled/50-mod-http-ucache.conf links the snippet);
#   - `nginx -t` accepts a configuration that includes that link (the
#     module loads into the installed nginx: same nginx-abi);
#   - the first request is rendered by the app (a miss falls back through
#     error_page 404 = @app), the second is answered by nginx itself
#     ($ucache_status HIT) with the same body, and so is a third while every
#     uwsgi process is SIGSTOPped: nginx read the page from the store file.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/../.." && pwd)
version=$(cat "$checkout/VERSION")
pkg=libnginx-mod-http-ucache
module=/usr/lib/nginx/modules/ngx_http_ucache_module.so
snippet=/usr/share/nginx/modules-available/mod-http-ucache.conf
link=/etc/nginx/modules-enabled/50-mod-http-ucache.conf
user=www-data

fail() { echo "smoke-nginx: FAIL: $*" >&2; exit 1; }
ok() { echo "smoke-nginx: ok: $*"; }
# shellcheck source=tests/deb/lib.sh
. "$checkout/tests/deb/lib.sh"

[ "$(id -u)" -eq 0 ] || fail "run as root (nginx and uwsgi drop to $user)"
unset PYTHONPATH PYTHONHOME
scratch=$(mktemp -d /tmp/ucache-smoke-nginx.XXXXXX)
uwsgi_pid='' nginx_pid=''
stopped=
cleanup() {
	[ -n "$stopped" ] && kill -CONT -- "-$uwsgi_pid" 2>/dev/null
	if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
		kill -QUIT "$nginx_pid"
		wait "$nginx_pid" 2>/dev/null || true
	fi
	if [ -n "$uwsgi_pid" ] && kill -0 "$uwsgi_pid" 2>/dev/null; then
		kill -INT "$uwsgi_pid"
		wait "$uwsgi_pid" 2>/dev/null || true
	fi
	rm -rf "$scratch"
}
trap cleanup EXIT
chmod 0755 "$scratch"
cd "$scratch"

# ---------------------------------------------------------------- dpkg
files=$(installed_files "$pkg" "$version")
for f in "$module" "$snippet"; do
	grep -qx -- "$f" <<<"$files" || fail "dpkg -L $pkg does not list $f"
	[ -f "$f" ] || fail "$f is listed by dpkg -L but missing"
done
[ "$(readlink "$link")" = "$snippet" ] ||
	fail "$link is '$(readlink "$link" || echo missing)', want a link to $snippet (the postinst's)"
ok "$pkg $version installed, enabled: $link -> $snippet"

# ----------------------------------------------------- uwsgi writes the page
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
uport=$(free_port)
install -d -o "$user" -g "$user" run
store=$scratch/run/pages.store
cat > app.py <<'EOF'
from ucache.wsgi import Accelerator

renders = 0


def page(environ, start_response):
    global renders
    renders += 1
    environ['accelerator.cache_for'] = 300
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('ucache smoke page, render %d\n' % renders).encode()]


application = Accelerator(page, cache='pages')
EOF
# its own session: SIGSTOP reaches the master and its worker as a group
setsid uwsgi --plugin python3,ucache --master --processes 1 --uid "$user" --gid "$user" \
	--socket "127.0.0.1:$uport" --cache2 "name=pages,items=100,blocksize=65536,store=$store" \
	--wsgi-file app.py > uwsgi.log 2>&1 &
uwsgi_pid=$!

# ------------------------------------------------------------------ nginx
mkdir tmp
cat > nginx.conf <<EOF
include $link;
daemon off;
master_process on;
user $user;
worker_processes 1;
pid $scratch/nginx.pid;
error_log $scratch/nginx-error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $scratch/tmp/body;
    proxy_temp_path $scratch/tmp/proxy;
    fastcgi_temp_path $scratch/tmp/fastcgi;
    uwsgi_temp_path $scratch/tmp/uwsgi;
    scgi_temp_path $scratch/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        location / {
            set \$ucache_key \$request_uri;
            ucache_pass $store;
            add_header X-Ucache \$ucache_status;
            error_page 404 = @app;
        }
        location @app {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass 127.0.0.1:$uport;
        }
    }
}
EOF
out=$(nginx -t -p "$scratch" -c "$scratch/nginx.conf" 2>&1) ||
	fail "nginx -t refuses a configuration including $link: $out"
ok "nginx -t loads $module through $link"
nginx -p "$scratch" -c "$scratch/nginx.conf" > nginx.log 2>&1 &
nginx_pid=$!

# status, X-Ucache and body of GET path, on one line; exit 1 if no answer
get() {
	python3 - "http://127.0.0.1:$port$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status, r.headers.get('X-Ucache', '-'), r.read().decode().strip())
except OSError as e:
    print('error', e)
    sys.exit(1)
EOF
}

first=
for _ in $(seq 200); do
	kill -0 "$uwsgi_pid" 2>/dev/null || { cat uwsgi.log >&2; fail "uwsgi exited at start"; }
	kill -0 "$nginx_pid" 2>/dev/null || { cat nginx.log nginx-error.log >&2; fail "nginx exited at start"; }
	first=$(get /smoke) && break
	sleep 0.05
done
page='ucache smoke page, render 1'
case "$first" in
"200 "*" $page") ;;
*) cat uwsgi.log nginx-error.log >&2; fail "the first request answered '$first', want 200 and '$page'" ;;
esac
ok "a miss falls back to the app: $first"

got=$(get /smoke) || true
[ "$got" = "200 HIT $page" ] || { cat nginx-error.log >&2; fail "the second request answered '$got', want '200 HIT $page'"; }
ok "nginx answers the next request from the store: $got"

kill -STOP -- "-$uwsgi_pid"
stopped=1
got=$(get /smoke) || true
[ "$got" = "200 HIT $page" ] ||
	{ cat nginx-error.log >&2; fail "with uwsgi stopped, the request answered '$got', want '200 HIT $page'"; }
kill -CONT -- "-$uwsgi_pid"
stopped=
ok "with every uwsgi process stopped: $got"

echo "smoke-nginx: all checks passed for $pkg $version"
