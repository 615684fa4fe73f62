#!/bin/sh
# After the package's files are gone. The data directory /var/lib/trail
# (the audit logs and their signing keys) and the trail user are kept,
# even by dpkg --purge: deleting an audit log is the operator's decision,
# never a package manager's side effect (docs/OPERATIONS.md).
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
case "$1" in
purge|0)
	if [ -d /var/lib/trail ]; then
		echo "trail: /var/lib/trail (the audit logs and keys) is kept; remove it yourself once it is no longer needed" >&2
	fi
	;;
esac
exit 0
