#!/bin/sh
# AfterInstall: check the configuration that was just installed and record the deployment.
set -eu
root="${CUTOVER_HOST_ROOT:-}"
root="${root%/}"
conf="$root/etc/webapp/webapp.conf"
if ! grep -q '^listen = ' "$conf"; then
    echo "$conf has no 'listen =' line" >&2
    exit 1
fi
echo "$DEPLOYMENT_ID" >"$root/var/lib/webapp/installed"
echo "$LIFECYCLE_EVENT: installed deployment $DEPLOYMENT_ID"
