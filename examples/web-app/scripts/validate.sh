#!/bin/sh
# ValidateService: check that this deployment's files are in place and that it is running.
set -eu
root="${CUTOVER_HOST_ROOT:-}"
root="${root%/}"
for file in "$root/srv/web-app/index.html" "$root/srv/web-app/static/site.css" \
    "$root/etc/web-app/web-app.conf"; do
    if [ ! -f "$file" ]; then
        echo "missing $file" >&2
        exit 1
    fi
done
running="$(cat "$root/var/lib/web-app/running" 2>/dev/null || true)"
if [ "$running" != "$DEPLOYMENT_ID" ]; then
    echo "web-app runs deployment '$running', not $DEPLOYMENT_ID" >&2
    exit 1
fi
echo "$LIFECYCLE_EVENT: deployment $DEPLOYMENT_ID is installed and running"
