#!/usr/bin/env bash
# tests/deb/check.sh [DEB] - check the built package file (no root needed):
#   - Depends names the uwsgi-abi-<hash> the installed uwsgi-core Provides,
#     and the shared libraries (libc6, libxxhash0) dpkg-shlibdeps found;
#   - dpkg -c lists the plugin, ucache-inspect, ucache-top, their man pages,
#     the copyright file and (when the checkout has python/ucache/) the
#     Python package and its wheel;
#   - lintian, when installed, reports no error.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/../.." && pwd)
version=$(cat "$checkout/VERSION")
deb=${1:-$checkout/build/deb/uwsgi-plugin-ucache_${version}_$(dpkg --print-architecture).deb}

fail() { echo "deb check: FAIL: $*" >&2; exit 1; }
ok() { echo "deb check: ok: $*"; }

[ -f "$deb" ] || fail "$deb does not exist (make deb)"

abi=$(dpkg-query -W -f='${Provides}' uwsgi-core | grep -o 'uwsgi-abi-[0-9a-f]*' || true)
[ -n "$abi" ] || fail "the installed uwsgi-core Provides no uwsgi-abi-<hash>"
depends=$(dpkg-deb -f "$deb" Depends)
for want in "$abi" libc6 libxxhash0; do
	tr ',' '\n' <<<"$depends" | grep -q "^ *$want\( \|$\)" ||
		fail "Depends '$depends' lacks $want"
done
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] ||
	fail "Version '$(dpkg-deb -f "$deb" Version)', want $version"
ok "Depends: $depends"

contents=$(dpkg -c "$deb" | awk '{print $6}')
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
for f in "${want[@]}"; do
	grep -qx -- "$f" <<<"$contents" || fail "dpkg -c $deb does not list $f"
done
ok "dpkg -c lists the ${#want[@]} expected files"

if command -v lintian >/dev/null; then
	rc=0
	out=$(lintian --fail-on error "$deb" 2>&1) || rc=$?
	# as root lintian also says it should not run as root: not about the package
	grep -v 'running with root privileges' <<<"$out" || true
	[ "$rc" -eq 0 ] || fail "lintian reports an error on $deb (exit $rc)"
	ok "lintian: no error"
else
	echo "deb check: lintian not installed, skipped"
fi
