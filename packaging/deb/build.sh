#!/bin/sh
# packaging/deb/build.sh VERSION ROOT OUTDIR - turn ROOT (a `make install
# DESTDIR=ROOT PREFIX=/usr` tree, see the Makefile's deb target) into
# OUTDIR/uwsgi-plugin-ucache_VERSION_ARCH.deb with dpkg-deb (the steps are
# packaging/deb/lib.sh's).
#
# Depends is what ties the plugin to the binary:
#   - uwsgi-abi-<hash>, which the installed uwsgi-core Provides (the hash of
#     its uwsgi.h and cflags): the plugin only runs on that exact binary, and
#     apt then removes or upgrades the two together, as it does for Debian's
#     own out-of-tree plugins (uwsgi-plugin-php);
#   - the shared libraries the plugin and ucache-inspect link, computed by
#     dpkg-shlibdeps (${shlibs:Depends}).
set -eu

pkg=uwsgi-plugin-ucache
version=$1
root=$2
out=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=packaging/deb/lib.sh
. "$here/lib.sh"
plugin=usr/lib/uwsgi/plugins/ucache_plugin.so
tool=usr/bin/ucache-inspect

[ -f "$root/$plugin" ] && [ -f "$root/$tool" ] || die "$root lacks the plugin or ucache-inspect (run make deb)"

abi=$(dpkg-query -W -f='${Provides}' uwsgi-core 2>/dev/null | tr ',' '\n' |
	sed -n 's/^ *\(uwsgi-abi-[0-9a-f]*\).*/\1/p')
[ -n "$abi" ] || die "the installed uwsgi-core Provides no uwsgi-abi-<hash> (is uwsgi-core installed?)"

deb_strip "$root/$plugin" "$root/$tool"
deb_changelog "$pkg" "$version" "$root/usr/share/doc/$pkg"
depends="$abi, $(deb_shlibs "$pkg" "$root" "$plugin" "$tool")"
# the Python package's modules need an interpreter (what dh_python3 adds)
[ -d "$root/usr/lib/python3/dist-packages" ] && depends="$depends, python3:any"
chmod 0755 "$root/$tool"
chmod 0644 "$root/$plugin"
deb_build "$pkg" "$version" "$root" "$out" "$here/control.in" "$depends"
