#!/usr/bin/env bash
# tests/deb/check.sh [PLUGIN_DEB [MODULE_DEB]] - check the built package
# files (no root needed):
#   - uwsgi-plugin-ucache: Depends names the uwsgi-abi-<hash> the installed
#     uwsgi-core Provides, and the shared libraries (libc6, libxxhash0)
#     dpkg-shlibdeps found; dpkg -c lists the plugin, ucache-inspect,
#     ucache-top, their man pages, the copyright file and (when the checkout
#     has python/ucache/) the Python package and its wheel;
#   - libnginx-mod-http-ucache, where nginx-dev is installed (make deb then
#     builds it): Depends names the nginx-abi-<version> the installed nginx
#     Provides, libc6 and libxxhash0; dpkg -c lists the module in
#     /usr/lib/nginx/modules/, the modules-available snippet (whose line
#     loads that file) and the doc files; the maintainer scripts enable and
#     disable the snippet as Debian's libnginx-mod-* do;
#   - lintian, when installed, reports no error on either.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/../.." && pwd)
version=$(cat "$checkout/VERSION")
arch=$(dpkg --print-architecture)
deb=${1:-$checkout/build/deb/uwsgi-plugin-ucache_${version}_$arch.deb}
mod_deb=${2:-$checkout/build/deb/libnginx-mod-http-ucache_${version}_$arch.deb}

fail() { echo "deb check: FAIL: $*" >&2; exit 1; }
ok() { echo "deb check: ok: $*"; }

# check_control DEB WANT... - the file exists, is at VERSION, and its
# Depends names each WANT (a package name, any version)
check_control() {
	local f=$1 depends want
	shift
	[ -f "$f" ] || fail "$f does not exist (make deb)"
	depends=$(dpkg-deb -f "$f" Depends)
	for want in "$@"; do
		tr ',' '\n' <<<"$depends" | grep -q "^ *$want\( \|$\)" ||
			fail "$(basename "$f"): Depends '$depends' lacks $want"
	done
	[ "$(dpkg-deb -f "$f" Version)" = "$version" ] ||
		fail "$(basename "$f"): Version '$(dpkg-deb -f "$f" Version)', want $version"
	ok "$(basename "$f"): Depends: $depends"
}

# check_contents DEB FILE... - dpkg -c lists every FILE (./usr/...)
check_contents() {
	local f=$1 contents want
	shift
	contents=$(dpkg -c "$f" | awk '{print $6}')
	for want in "$@"; do
		grep -qx -- "$want" <<<"$contents" || fail "dpkg -c $f does not list $want"
	done
	ok "$(basename "$f"): dpkg -c lists the $# expected files"
}

check_lintian() {
	local rc=0 out
	if ! command -v lintian >/dev/null; then
		echo "deb check: lintian not installed, skipped"
		return
	fi
	out=$(lintian --fail-on error "$1" 2>&1) || rc=$?
	# as root lintian also says it should not run as root: not about the package
	grep -v 'running with root privileges' <<<"$out" || true
	[ "$rc" -eq 0 ] || fail "lintian reports an error on $1 (exit $rc)"
	ok "$(basename "$1"): lintian: no error"
}

# ------------------------------------------------------ uwsgi-plugin-ucache
abi=$(dpkg-query -W -f='${Provides}' uwsgi-core | grep -o 'uwsgi-abi-[0-9a-f]*' || true)
[ -n "$abi" ] || fail "the installed uwsgi-core Provides no uwsgi-abi-<hash>"
check_control "$deb" "$abi" libc6 libxxhash0

want=(./usr/lib/uwsgi/plugins/ucache_plugin.so ./usr/bin/ucache-inspect
	./usr/share/man/man1/ucache-inspect.1.gz ./usr/bin/ucache-top ./usr/share/man/man1/ucache-top.1.gz ./usr/share/doc/uwsgi-plugin-ucache/copyright
	./usr/share/doc/uwsgi-plugin-ucache/changelog.gz ./usr/share/doc/uwsgi-plugin-ucache/README.md)
while read -r f; do
	want+=("./usr/share/doc/uwsgi-plugin-ucache/$f")
done < <(cd "$checkout" && ls docs/*.md docs/img/*.png)
if [ -d "$checkout/python/ucache" ]; then
	want+=(./usr/lib/python3/dist-packages/ucache/_version.py
		"./usr/share/uwsgi-plugin-ucache/ucache-${version//\~/}-py3-none-any.whl")
	while read -r f; do
		want+=("./usr/lib/python3/dist-packages/$f")
	done < <(cd "$checkout/python" && find ucache -name '*.py' ! -name _version.py)
fi
check_contents "$deb" "${want[@]}"
check_lintian "$deb"

# ------------------------------------------------- libnginx-mod-http-ucache
if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' nginx-dev 2>/dev/null)" != "ii " ]; then
	echo "deb check: nginx-dev not installed: no nginx module was built, libnginx-mod-http-ucache skipped"
	exit 0
fi
nginx_abi=$(dpkg-query -W -f='${Provides}' nginx | grep -o 'nginx-abi-[^ ,]*' || true)
[ -n "$nginx_abi" ] || fail "the installed nginx Provides no nginx-abi-<version>"
check_control "$mod_deb" "$nginx_abi" libc6 libxxhash0

module=/usr/lib/nginx/modules/ngx_http_ucache_module.so
snippet=/usr/share/nginx/modules-available/mod-http-ucache.conf
doc=./usr/share/doc/libnginx-mod-http-ucache
check_contents "$mod_deb" ".$module" ".$snippet" "$doc/copyright" "$doc/changelog.gz"
line=$(dpkg-deb --fsys-tarfile "$mod_deb" | tar -xO ".$snippet")
[ "$line" = "load_module $module;" ] || fail "$snippet holds '$line', want 'load_module $module;'"
ok "$snippet: $line"

# dh_nginx's scripts, for the link 50-mod-http-ucache.conf
scripts=$(mktemp -d)
trap 'rm -rf "$scripts"' EXIT
dpkg-deb --control "$mod_deb" "$scripts"
for s in postinst prerm postrm; do
	[ -x "$scripts/$s" ] || fail "$(basename "$mod_deb") has no executable $s"
	grep -q 'for confpair in mod-http-ucache.conf:50-mod-http-ucache.conf' "$scripts/$s" ||
		fail "its $s does not handle mod-http-ucache.conf:50-mod-http-ucache.conf"
done
# shellcheck disable=SC2016  # the script's own text, $from unexpanded
grep -q 'ln -sf /usr/share/nginx/modules-available/$from' "$scripts/postinst" ||
	fail "its postinst does not link the snippet into /etc/nginx/modules-enabled"
ok "postinst/prerm/postrm enable and disable /etc/nginx/modules-enabled/50-mod-http-ucache.conf"
check_lintian "$mod_deb"
