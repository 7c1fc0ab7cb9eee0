#!/bin/bash
# build.sh NGINX_SRC OUT ENGINE_LIB - build OUT/ngx_http_ucache_module.so the
# way Debian builds its libnginx-mod-* (dh's nginx_mod build system, from
# nginx-dev): nginx's configure with Debian's own flags (conf_flags,
# --with-compat, dpkg-buildflags) and --add-dynamic-module, then
# `make modules`.  The module's signature then matches Debian's nginx, which
# load_module checks.  configure writes into the tree it runs in, so it runs
# in a copy (OUT/src): /usr/share/nginx/src is never written.
set -euo pipefail
src=$1 out=$2 lib=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ ! -f "$out/objs/Makefile" ] || [ "$here/config" -nt "$out/objs/Makefile" ] ||
   [ "$src/conf_flags" -nt "$out/objs/Makefile" ]; then
	rm -rf "$out/src" "$out/objs"
	cp -r "$src" "$out/src"
	# shellcheck disable=SC1091
	(cd "$out/src" && . ./conf_flags &&
	 UCACHE_LIB=$lib ./configure \
		--with-cc-opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS)" \
		--with-ld-opt="$(dpkg-buildflags --get LDFLAGS) -fPIC" \
		"${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$here" --builddir="$out/objs" \
		> "$out/configure.log" 2>&1) || { tail -20 "$out/configure.log"; exit 1; }
fi
# the engine archive is not a prerequisite in nginx's Makefile: relink
rm -f "$out/objs/ngx_http_ucache_module.so"
make -s -C "$out/src" -f "$out/objs/Makefile" modules
cp "$out/objs/ngx_http_ucache_module.so" "$out/ngx_http_ucache_module.so"
