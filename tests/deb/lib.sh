# shellcheck shell=bash
# tests/deb/lib.sh - what both smoke tests (smoke.sh, smoke-nginx.sh) check
# the same way.  Sourced after the script defines fail().

# installed_files PKG VERSION: print dpkg -L PKG, or fail with one line
# unless dpkg says PKG is installed at VERSION (the checkout's).
installed_files() {
	local status
	status=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null) ||
		fail "$1 is not installed (apt-get install ./build/deb/${1}_*.deb first)"
	[ "$status" = "install ok installed $2" ] ||
		fail "$1: dpkg says '$status', want 'install ok installed $2'"
	dpkg -L "$1"
}
