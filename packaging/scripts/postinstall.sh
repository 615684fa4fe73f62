#!/bin/sh
# After the package's files are in place: the trail system user, its data
# directory, the settings file's owner. Works where PID 1 is not systemd
# (containers, chroots): systemctl is used only when systemd runs.
set -e
if ! getent group trail >/dev/null 2>&1; then
	groupadd --system trail
fi
if ! getent passwd trail >/dev/null 2>&1; then
	useradd --system --gid trail --home-dir /var/lib/trail --no-create-home \
		--shell /usr/sbin/nologin --comment "Trail audit log" trail
fi
install -d -o trail -g trail -m 0700 /var/lib/trail
chown root:trail /etc/trail/trail.env
chmod 0640 /etc/trail/trail.env
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	# An upgrade restarts a running Trail on the new binary (its
	# migrations run at start); a first install leaves it to the operator:
	# systemctl enable --now trail.
	if systemctl is-active --quiet trail.service; then
		systemctl restart trail.service || true
	fi
fi
exit 0
