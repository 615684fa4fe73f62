#!/usr/bin/env bash
# Makes the upgrade test's fixtures (TestUpgrade_FromPreviousVersion):
# a database written by the build of an earlier commit, on each driver.
#
#	cmd/trail/testdata/upgrade/make-fixtures.sh COMMIT [POSTGRES_URL]
#
# It builds that commit's cmd/trail in a temporary worktree, serves on a
# new SQLite data directory and on a new PostgreSQL database, creates an
# organization with 300 events and waits for their checkpoint, stops the
# server (SIGTERM), and keeps here: sqlite-COMMIT.db.gz, postgres-COMMIT.dump
# (pg_dump's custom format), and the data directory's keys, which the
# test needs to start a server on them. Tags may not travel, so the commit
# names the version.
set -euo pipefail
commit=$(git rev-parse --short "$1")
pg=${2:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'git worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/src" "$commit" >/dev/null
(cd "$work/src" && go build -o "$work/trail" ./cmd/trail)
key=sk_upgrade_fixture_0123456789abcdefghij
load() { # load URL
	local u=$1
	curl -fsS -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
		-d '{"id":"org_upgrade","name":"Upgrade Corp"}' "$u/organizations"
	for b in 0 1 2; do
		python3 - "$b" >"$work/batch.json" <<'PY'
import json, sys
b = int(sys.argv[1])
acts = ["escalation_policy.updated", "user.role_granted", "log_stream.created", "schedule.updated"]
evs = []
for i in range(100):
    n = b * 100 + i
    evs.append({"action": acts[n % 4], "occurred_at": "2026-11-%02dT%02d:%02d:00Z" % (1 + n % 28, n % 24, n % 60),
        "actor": {"id": "user_%d" % (n % 7), "type": "user", "name": "User %d" % (n % 7)},
        "targets": [{"id": "tgt_%d" % n, "type": "escalation_policy", "name": "Policy %d" % n}],
        "context": {"location": "192.0.2.%d" % (n % 250), "user_agent": "fixture"},
        "metadata": {"before_name": "Old %d" % n, "after_name": "New %d" % n}})
print(json.dumps({"organization_id": "org_upgrade", "events": evs}))
PY
		curl -fsS -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
			--data-binary @"$work/batch.json" "$u/audit_logs/events/batch"
	done
	for _ in $(seq 1 100); do
		size=$(curl -fsS -H "Authorization: Bearer $key" "$u/audit_logs/checkpoint?organization_id=org_upgrade" | sed -n 2p)
		[ "$size" = 301 ] && return 0
		sleep 0.2
	done
	echo "no checkpoint of 301 events" >&2
	return 1
}
serve() { # serve DATA_DIR [DATABASE_URL]: loads it, then stops
	TRAIL_ADMIN_KEY=$key TRAIL_DATA_DIR=$1 TRAIL_DATABASE_URL=${2:-} "$work/trail" serve --addr 127.0.0.1:0 \
		--log-origin upgrade.trail.test --rate-limit 0 2>"$work/serve.log" &
	local pid=$!
	local u=""
	for _ in $(seq 1 100); do
		u=$(sed -n 's/.*msg="trail serving" url=\(http:[^ ]*\).*/\1/p' "$work/serve.log")
		[ -n "$u" ] && break
		sleep 0.2
	done
	[ -n "$u" ] || { cat "$work/serve.log"; exit 1; }
	load "$u"
	kill -TERM $pid
	wait $pid
}

serve "$work/sqlite"
gzip -9 <"$work/sqlite/trail.db" >"$here/sqlite-$commit.db.gz"
cp "$work/sqlite/log-signing.key" "$here/sqlite-$commit.log-signing.key"
cp "$work/sqlite/secret.key" "$here/sqlite-$commit.secret.key"

db=trail_fixture_$commit
psql "$pg" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
pgdb=$(echo "$pg" | sed "s|/[^/?]*?|/$db?|")
serve "$work/postgres" "$pgdb"
pg_dump --format=custom --no-owner --file="$here/postgres-$commit.dump" "$pgdb"
cp "$work/postgres/log-signing.key" "$here/postgres-$commit.log-signing.key"
cp "$work/postgres/secret.key" "$here/postgres-$commit.secret.key"
psql "$pg" -qc "DROP DATABASE $db"
ls -la "$here"
