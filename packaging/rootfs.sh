#!/bin/sh
# packaging/rootfs.sh DIR BINARY: assembles the container image's file
# tree in DIR, as the Dockerfile (FROM scratch) takes it: the static
# binary, the build machine's CA certificates (for log stream
# destinations), a passwd and group naming the non-root user trail
# (10001), and the data directory, owned by it. Time zones are in the
# binary (time/tzdata). packaging/test.sh runs the tree in a chroot.
set -eu
root=$1
bin=$2
certs=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$certs" ] || { echo "rootfs: no CA bundle at $certs (apt-get install ca-certificates, or set CA_BUNDLE)" >&2; exit 1; }
rm -rf "$root"
mkdir -p "$root/usr/bin" "$root/etc/ssl/certs" "$root/var/lib/trail" "$root/tmp"
install -m 0755 "$bin" "$root/usr/bin/trail"
install -m 0644 "$certs" "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\ntrail:x:10001:10001:Trail:/var/lib/trail:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\ntrail:x:10001:\n' >"$root/etc/group"
chmod 0700 "$root/var/lib/trail"
chmod 1777 "$root/tmp"
# Owned by trail where we may (root); otherwise the Dockerfile's
# COPY --chown gives it that owner.
if [ "$(id -u)" = 0 ]; then
	chown 10001:10001 "$root/var/lib/trail"
fi
echo "rootfs: $root"
