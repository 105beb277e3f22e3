#!/bin/sh
# ApplicationStart: mark web-app running this deployment. A real service would start here,
# e.g. `systemctl restart web-app`.
set -eu
root="${CUTOVER_HOST_ROOT:-}"
root="${root%/}"
echo "$DEPLOYMENT_ID" >"$root/var/lib/web-app/running"
echo "$LIFECYCLE_EVENT: web-app started for deployment $DEPLOYMENT_ID"
