#!/bin/sh
# packaging/deb/build.sh VERSION ROOT OUTDIR - turn ROOT (a `make install
# DESTDIR=ROOT PREFIX=/usr` tree, see the Makefile's deb target) into
# OUTDIR/uwsgi-plugin-ucache_VERSION_ARCH.deb with dpkg-deb.
#
# debhelper would add nothing here but a debian/ tree to maintain: what it
# would do for this package is the few steps below (strip, changelog,
# shlibs, md5sums, control).  Depends is what ties the plugin to the binary:
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
arch=$(dpkg --print-architecture)
plugin=$root/usr/lib/uwsgi/plugins/ucache_plugin.so
tool=$root/usr/bin/ucache-inspect
doc=$root/usr/share/doc/$pkg
maintainer=${DEB_MAINTAINER:-The ucache authors <ucache@example.org>}

die() { echo "packaging/deb/build.sh: $*" >&2; exit 1; }

[ -f "$plugin" ] && [ -f "$tool" ] || die "$root lacks the plugin or ucache-inspect (run make deb)"

abi=$(dpkg-query -W -f='${Provides}' uwsgi-core 2>/dev/null | tr ',' '\n' |
	sed -n 's/^ *\(uwsgi-abi-[0-9a-f]*\).*/\1/p')
[ -n "$abi" ] || die "the installed uwsgi-core Provides no uwsgi-abi-<hash> (is uwsgi-core installed?)"

# What dh_strip does: the package ships no debug info (-g stays in the
# build tree's copies, which the tests use).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$plugin" "$tool"

# A native package's changelog (lintian: no-changelog), dated like the
# commit it was built from so that two builds of one commit are the same.
when=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
mkdir -p "$doc"
{
	echo "$pkg ($version) unstable; urgency=medium"
	echo
	echo "  * ucache $version, built from its repository (README.md says what changed)."
	echo
	echo " -- $maintainer  $(LC_ALL=C date -u -R -d "@$when")"
} | gzip -9n > "$doc/changelog.gz"

# dpkg-shlibdeps wants the layout of a package build: a debian/control in
# the current directory naming the package (a scratch directory holds a
# minimal one) and binaries under a root that has a DEBIAN directory.  The
# plugin's uWSGI symbols come from the binary that loads it, not from a
# library: warn only about libraries not found (4), not about those (1).
rm -rf "$root/DEBIAN"
mkdir -m 0755 "$root/DEBIAN"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" > "$scratch/debian/control"
abs_root=$(cd "$root" && pwd)
shlibs=$(cd "$scratch" && dpkg-shlibdeps --warnings=4 -O \
	"-e$abs_root/usr/lib/uwsgi/plugins/ucache_plugin.so" "-e$abs_root/usr/bin/ucache-inspect" |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependency"
depends="$abi, $shlibs"
# the Python package's modules need an interpreter (what dh_python3 adds)
[ -d "$root/usr/lib/python3/dist-packages" ] && depends="$depends, python3:any"

# Modes as dh_fixperms leaves them (make install's are umask-dependent).
chmod -R u+rwX,go+rX,go-w "$root"
chmod 0755 "$tool"
chmod 0644 "$plugin"

(cd "$root" && find . -type f ! -path './DEBIAN/*' | sed 's|^\./||' | LC_ALL=C sort |
	xargs md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
	-e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$depends|" "$here/control.in" > "$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

mkdir -p "$out"
rm -f "$out/${pkg}"_*.deb
deb=$out/${pkg}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb"
echo "built $deb"
echo "  Depends: $(dpkg-deb -f "$deb" Depends)"
