#!/usr/bin/env bash
# packaging/test.sh DIST ARCH (as root; make test-packages runs it, and CI):
#   1. the .deb: dpkg -i, the trail user and its directories, the unit
#      checked by systemd-analyze verify, the installed binary started as
#      trail with the packaged settings file (as the unit would), an event
#      written, dpkg --purge (the data kept);
#   2. the container image's tree (dist/rootfs, what the Dockerfile copies
#      FROM scratch): the binary is static, and runs in a chroot as the
#      Dockerfile's USER with its ENV, ENTRYPOINT and CMD, with time zones.
# There is no Docker daemon on CI's machine; the tree is what the image is.
set -euo pipefail
dist=$1
arch=$2
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "packaging/test.sh needs root (it installs a package)" >&2; exit 1; }
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
	for _ in $(seq 1 150); do
		curl -fsS "$1/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
key=sk_package_test_0123456789abcdefghijkl
# smoke URL: an organization, an event, and a portal link in a named zone
# (which needs time zone data: the image has none but the binary's).
smoke() {
	local u=$1
	curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
		-d '{"id":"org_pkg","name":"Package"}' "$u/organizations" # 201, or 409 on a second run
	curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
		-d '{"organization_id":"org_pkg","event":{"action":"user.signed_in","occurred_at":"'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'","actor":{"id":"user_1","type":"user"},"targets":[{"id":"user_1","type":"user"}],"context":{"location":"127.0.0.1"}}}' \
		"$u/audit_logs/events" >/dev/null || fail "an event was not accepted by $u"
	curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
		-d '{"organization":"org_pkg","role":"owner","user":{"id":"u","time_zone":"America/Los_Angeles"}}' \
		"$u/portal/generate_link" | grep -q '"link"' || fail "a portal link in America/Los_Angeles was refused by $u"
}

echo "--- .deb"
deb=$(ls -t "$dist"/trail_*_"$arch".deb | head -1)
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'
dpkg --purge trail >/dev/null 2>&1 || true
dpkg -i "$deb"
want=$(dpkg-deb -f "$deb" Version | tr '~' '-')
/usr/bin/trail version | grep -qF "trail $want" || fail "trail version does not say $want: $(/usr/bin/trail version)"
getent passwd trail | grep -q ':/var/lib/trail:/usr/sbin/nologin$' || fail "no trail system user: $(getent passwd trail)"
[ "$(stat -c '%U %a' /var/lib/trail)" = "trail 700" ] || fail "/var/lib/trail: $(stat -c '%U %a' /var/lib/trail)"
[ "$(stat -c '%U:%G %a' /etc/trail/trail.env)" = "root:trail 640" ] || fail "/etc/trail/trail.env: $(stat -c '%U:%G %a' /etc/trail/trail.env)"
echo "systemd-analyze verify trail.service"
systemd-analyze verify /lib/systemd/system/trail.service
for d in NoNewPrivileges=yes ProtectSystem=strict StateDirectory=trail User=trail EnvironmentFile=/etc/trail/trail.env; do
	grep -qx "$d" /lib/systemd/system/trail.service || fail "the unit lacks $d"
done

# As the unit runs it: the trail user, the settings file's variables
# (and no others), on a free port (the flag wins over the file's address).
port=$(free_port)
log=$(mktemp)
setpriv=$(command -v setpriv) || fail "no setpriv (util-linux)"
# shellcheck disable=SC2046
env -i PATH=/usr/bin:/bin TRAIL_ADMIN_KEY=$key $(grep -Ev '^\s*(#|$)' /etc/trail/trail.env) \
	"$setpriv" --reuid=trail --regid=trail --init-groups -- /usr/bin/trail serve --addr "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
wait_ready "http://127.0.0.1:$port" "$pid" || { cat "$log"; fail "the installed trail did not become ready"; }
smoke "http://127.0.0.1:$port"
[ "$(stat -c %U /var/lib/trail/trail.db)" = trail ] || fail "the database is not the trail user's"
kill -TERM "$pid"
wait "$pid" || { cat "$log"; fail "trail did not stop cleanly on SIGTERM"; }
echo "the installed trail served on 127.0.0.1:$port as the trail user, with /etc/trail/trail.env"

dpkg --purge trail
for f in /usr/bin/trail /lib/systemd/system/trail.service /etc/trail/trail.env; do
	[ ! -e "$f" ] || fail "$f is still there after dpkg --purge"
done
[ -f /var/lib/trail/trail.db ] || fail "dpkg --purge removed the audit logs in /var/lib/trail"
echo "purged; /var/lib/trail kept"

echo "--- the image's tree"
root=$dist/rootfs
if readelf -l "$root/usr/bin/trail" | grep -q INTERP; then
	fail "the image's binary is dynamically linked"
fi
[ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA certificates in the image"
user=$(sed -n 's/^USER //p' Dockerfile)
[ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] || fail "the image runs as root"
mapfile -t envs < <(sed -n 's/^ENV //p' Dockerfile)
entry=$(sed -n 's/^ENTRYPOINT \[\(.*\)\]$/\1/p' Dockerfile | tr -d '",')
cmd=$(sed -n 's/^CMD \[\(.*\)\]$/\1/p' Dockerfile | tr -d '",')
vol=$(sed -n 's/^VOLUME \["\(.*\)"\]$/\1/p' Dockerfile)
[ -n "$entry" ] && [ -n "$vol" ] || fail "the Dockerfile has no ENTRYPOINT or VOLUME"
port=$(free_port)
log=$(mktemp)
chroot=$(command -v chroot) || fail "no chroot (coreutils)"
# shellcheck disable=SC2086
env -i "${envs[@]}" TRAIL_ADMIN_KEY=$key "$chroot" --userspec="$user" "$root" $entry $cmd --addr "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
wait_ready "http://127.0.0.1:$port" "$pid" || { cat "$log"; fail "the image's trail did not become ready"; }
smoke "http://127.0.0.1:$port"
[ "$(stat -c %u "$root$vol/trail.db")" = "${user%%:*}" ] || fail "the volume's database is not the image user's"
kill -TERM "$pid"
wait "$pid" || { cat "$log"; fail "the image's trail did not stop cleanly"; }
echo "the image's tree served in a chroot as $user, data in $vol"
echo "PASS packaging"
