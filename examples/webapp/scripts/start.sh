#!/bin/sh
# ApplicationStart: start webapp for this deployment. A real service would start here, e.g.
# `systemctl restart webapp`; this one records what runs and publishes its health, as the
# service's /health endpoint would.
set -eu
root="${CUTOVER_HOST_ROOT:-}"
root="${root%/}"
state="$root/var/lib/webapp"
echo "$DEPLOYMENT_ID" >"$state/running"
listen="$(sed -n 's/^listen = //p' "$root/etc/webapp/webapp.conf")"
printf 'status=ok\ndeployment=%s\nlisten=%s\n' "$DEPLOYMENT_ID" "$listen" >"$state/health"
echo "$LIFECYCLE_EVENT: webapp started for deployment $DEPLOYMENT_ID on $listen"
