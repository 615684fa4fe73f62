#!/bin/sh
# Before the package's files go: stop Trail on a removal (not on an
# upgrade, whose postinstall restarts it). deb passes "remove" or
# "upgrade"; rpm passes the number of versions left (0 on removal).
set -e
case "$1" in
remove|0)
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now trail.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
