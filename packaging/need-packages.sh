#!/bin/sh
# packaging/need-packages.sh WHAT FIX PACKAGE... - make sure the Debian
# packages a make goal needs are installed (the Makefile runs it before it
# builds anything; the lists are the Makefile's DEB_PACKAGES_*).
#
#   nothing missing     silent, exit 0: one dpkg-query, no apt-get
#   missing, as root    apt-get update + install of the missing ones only
#                       (apt's output on stderr), exit 0
#   missing, not root   one line on stdout naming what is missing and the
#                       command to run (FIX, e.g. "sudo make deps-run"), exit 1
#
# WHAT names the goal in that line ("make demo").  The Makefile shows the
# line with $(error): it captures stdout, so everything else goes to stderr.
set -eu

what=$1
fix=$2
shift 2

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "$what: cannot check the Debian packages it needs (no dpkg-query): install $* or their equivalents, then run it with UCACHE_SKIP_DEPS=1"
	exit 1
fi

# "ii" = installed; a package dpkg never heard of prints nothing (and makes
# dpkg-query exit 1), so each wanted name is looked up in what it printed.
installed=$(dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' "$@" 2>/dev/null |
	sed -n 's/^ii *//p') || true
missing=
for p in "$@"; do
	case " $(echo $installed) " in
	*" $p "*) ;;
	*) case " $missing " in *" $p "*) ;; *) missing="$missing $p" ;; esac ;;
	esac
done
missing=${missing# }
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "$what needs Debian packages that are not installed ($missing): run \`$fix\` first"
	exit 1
fi

echo "$what: installing the missing Debian packages: $missing" >&2
export DEBIAN_FRONTEND=noninteractive
# wait for the dpkg lock rather than fail where something else runs apt
if ! { apt-get -o DPkg::Lock::Timeout=120 update &&
       apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends $missing; } >&2; then
	echo "$what: apt-get install $missing failed (see apt's messages above)"
	exit 1
fi
