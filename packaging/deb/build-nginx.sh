#!/bin/sh
# packaging/deb/build-nginx.sh VERSION MODULE OUTDIR - package the nginx
# module (MODULE: build/nginx/ngx_http_ucache_module.so, `make
# nginx-module`) as OUTDIR/libnginx-mod-http-ucache_VERSION_ARCH.deb, laid
# out as Debian's own libnginx-mod-http-* are (what dh_nginx does for
# them; see `dpkg -L libnginx-mod-http-echo`):
#   - the module in /usr/lib/nginx/modules/;
#   - /usr/share/nginx/modules-available/mod-http-ucache.conf, its
#     load_module line;
#   - postinst / prerm / postrm from nginx-dev's debhelper autoscripts
#     (/usr/share/debhelper/autoscripts/*-nginx, filled in as dh_nginx
#     does): the postinst links the snippet as
#     /etc/nginx/modules-enabled/50-mod-http-ucache.conf (50: an http
#     module) and asks nginx to reload, remove moves the link aside (kept
#     as *.removed so a reinstall restores it), purge deletes it;
#   - Depends: the nginx-abi-<version> the installed nginx Provides (a
#     module only loads into the nginx it was compiled for: nginx refuses
#     another's "binary compatible" signature), plus the libraries the
#     module links (dpkg-shlibdeps: libc6, libxxhash0).
set -eu

pkg=libnginx-mod-http-ucache
version=$1
module=$2
out=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=packaging/deb/lib.sh
. "$here/lib.sh"
root=$out/nginx-root
so=usr/lib/nginx/modules/ngx_http_ucache_module.so
conf=mod-http-ucache.conf
link=50-$conf
autoscripts=/usr/share/debhelper/autoscripts
abisubstvars=${NGINX_SRC:-/usr/share/nginx/src}/debian/libnginx-mod.abisubstvars

[ -f "$module" ] || die "$module does not exist (make nginx-module, which needs nginx-dev)"
[ -f "$autoscripts/postinst-nginx" ] || die "$autoscripts/postinst-nginx is missing (is nginx-dev installed?)"

abi=$(dpkg-query -W -f='${Provides}' nginx 2>/dev/null | tr ',' '\n' | sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p')
[ -n "$abi" ] || die "the installed nginx Provides no nginx-abi-<version> (is nginx installed?)"
# the headers the module was compiled with (nginx-dev's) must be that nginx's
dev_abi=$(sed -n 's/^nginx:abi=//p' "$abisubstvars" 2>/dev/null || true)
[ "$dev_abi" = "$abi" ] ||
	die "nginx Provides $abi but nginx-dev ($abisubstvars) builds for '$dev_abi': install matching versions"

rm -rf "$root"
install -D -m 0644 "$module" "$root/$so"
# An absolute path, not dh_nginx's "modules/...": that one is relative to
# nginx's prefix, so an nginx started with its own -p could not load it.
mkdir -p "$root/usr/share/nginx/modules-available"
echo "load_module /$so;" > "$root/usr/share/nginx/modules-available/$conf"
install -D -m 0644 "$here/../../LICENSE" "$root/usr/share/doc/$pkg/copyright"

deb_strip "$root/$so"
deb_changelog "$pkg" "$version" "$root/usr/share/doc/$pkg"
depends="$abi, $(deb_shlibs "$pkg" "$root" "$so")"
for script in postinst prerm postrm; do
	{
		echo '#!/bin/sh'
		echo 'set -e'
		echo '# Automatically added by dh_nginx'
		sed "s/#NAMES#/$conf:$link/g" "$autoscripts/$script-nginx"
		echo '# End automatically added section'
	} > "$root/DEBIAN/$script"
	chmod 0755 "$root/DEBIAN/$script"
done
deb_build "$pkg" "$version" "$root" "$out" "$here/nginx-control.in" "$depends"
