# shellcheck shell=sh
# packaging/deb/lib.sh - the steps both packages take (sourced by build.sh,
# the uWSGI plugin's, and build-nginx.sh, the nginx module's).
#
# debhelper would add nothing here but a debian/ tree to maintain: what it
# would do for these packages is the few steps below (strip, changelog,
# shlibs, fixperms, md5sums, control), each the one a dh_* program does.

die() { echo "$0: $*" >&2; exit 1; }

maintainer=${DEB_MAINTAINER:-The ucache authors <ucache@example.org>}
arch=$(dpkg --print-architecture)

# deb_strip FILE... - what dh_strip does: the package ships no debug info
# (-g stays in the build tree's copies, which the tests use).
deb_strip() {
	strip --strip-unneeded --remove-section=.comment --remove-section=.note "$@"
}

# deb_changelog PKG VERSION DOCDIR - a native package's changelog (lintian:
# no-changelog), dated like the commit it was built from so that two builds
# of one commit are the same.
deb_changelog() {
	when=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
	mkdir -p "$3"
	{
		echo "$1 ($2) unstable; urgency=medium"
		echo
		echo "  * ucache $2, built from its repository (README.md says what changed)."
		echo
		echo " -- $maintainer  $(LC_ALL=C date -u -R -d "@$when")"
	} | gzip -9n > "$3/changelog.gz"
}

# deb_shlibs PKG ROOT FILE... - ${shlibs:Depends} of the ELF files (paths
# under ROOT), from dpkg-shlibdeps.  It wants the layout of a package
# build: a debian/control in the current directory naming the package (a
# scratch directory holds a minimal one) and binaries under a root that
# has a DEBIAN directory.  Plugins and modules take their host's symbols
# (uwsgi's, nginx's) from the binary that loads them, not from a library:
# warn only about libraries not found (4), not about those (1).
deb_shlibs() {
	pkg=$1 root=$2
	shift 2
	rm -rf "$root/DEBIAN"
	mkdir -m 0755 "$root/DEBIAN"
	scratch=$(mktemp -d)
	mkdir "$scratch/debian"
	printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" > "$scratch/debian/control"
	abs_root=$(cd "$root" && pwd)
	args=
	for f in "$@"; do args="$args -e$abs_root/$f"; done
	# shellcheck disable=SC2086  # one word per file (paths without spaces)
	shlibs=$(cd "$scratch" && dpkg-shlibdeps --warnings=4 -O $args | sed -n 's/^shlibs:Depends=//p')
	rm -rf "$scratch"
	[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependency of $*"
	echo "$shlibs"
}

# deb_build PKG VERSION ROOT OUTDIR CONTROL_IN DEPENDS - modes as
# dh_fixperms leaves them (make install's are umask-dependent; executables
# keep their x bit), md5sums, the control file from CONTROL_IN (@VERSION@,
# @ARCH@, @MAINTAINER@, @SIZE@, @DEPENDS@), then dpkg-deb into
# OUTDIR/PKG_VERSION_ARCH.deb.  Maintainer scripts already in ROOT/DEBIAN
# are kept (deb_shlibs made it).
deb_build() {
	pkg=$1 version=$2 root=$3 out=$4 control_in=$5 depends=$6
	chmod -R u+rwX,go+rX,go-w "$root"
	(cd "$root" && find . -type f ! -path './DEBIAN/*' | sed 's|^\./||' | LC_ALL=C sort |
		xargs md5sum) > "$root/DEBIAN/md5sums"
	chmod 0644 "$root/DEBIAN/md5sums"
	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
		-e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$depends|" "$control_in" > "$root/DEBIAN/control"
	chmod 0644 "$root/DEBIAN/control"
	mkdir -p "$out"
	rm -f "$out/${pkg}"_*.deb
	deb=$out/${pkg}_${version}_${arch}.deb
	dpkg-deb --root-owner-group -Zxz --build "$root" "$deb"
	echo "built $deb"
	echo "  Depends: $(dpkg-deb -f "$deb" Depends)"
}
