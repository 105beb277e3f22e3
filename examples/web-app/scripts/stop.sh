#!/bin/sh
# ApplicationStop (runs the previous revision's copy): mark web-app stopped, if it was running.
# A real service would stop here, e.g. `systemctl stop web-app`.
set -eu
root="${CUTOVER_HOST_ROOT:-}"
root="${root%/}"
state="$root/var/lib/web-app"
if [ -f "$state/running" ]; then
    echo "$LIFECYCLE_EVENT: stopping web-app $(cat "$state/running")"
    rm -f "$state/running"
else
    echo "$LIFECYCLE_EVENT: web-app is not running"
fi
