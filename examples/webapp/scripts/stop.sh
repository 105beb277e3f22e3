#!/bin/sh
# ApplicationStop (runs the previous revision's copy): mark webapp stopped, if it was running.
# A real service would stop here, e.g. `systemctl stop webapp`.
set -eu
root="${CUTOVER_HOST_ROOT:-}"
root="${root%/}"
state="$root/var/lib/webapp"
if [ -f "$state/running" ]; then
    echo "$LIFECYCLE_EVENT: stopping webapp $(cat "$state/running")"
    rm -f "$state/running" "$state/health"
else
    echo "$LIFECYCLE_EVENT: webapp is not running"
fi
