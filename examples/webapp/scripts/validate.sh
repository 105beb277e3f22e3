#!/bin/sh
# ValidateService: a health check. The installed files must be in place, and the service must
# report itself healthy for this deployment within a few attempts, as a load balancer's health
# check would (a real service: `curl -fsS http://localhost:8080/health`).
set -eu
root="${CUTOVER_HOST_ROOT:-}"
root="${root%/}"
for file in "$root/srv/webapp/index.html" "$root/srv/webapp/static/site.css" \
    "$root/etc/webapp/webapp.conf"; do
    if [ ! -f "$file" ]; then
        echo "missing $file" >&2
        exit 1
    fi
done
health="$root/var/lib/webapp/health"
attempt=1
while [ "$attempt" -le 5 ]; do
    if grep -qx 'status=ok' "$health" 2>/dev/null &&
        grep -qx "deployment=$DEPLOYMENT_ID" "$health"; then
        echo "$LIFECYCLE_EVENT: healthy on attempt $attempt: deployment $DEPLOYMENT_ID is running"
        exit 0
    fi
    echo "$LIFECYCLE_EVENT: not healthy yet (attempt $attempt of 5)"
    sleep 0.2
    attempt=$((attempt + 1))
done
echo "webapp is not healthy for deployment $DEPLOYMENT_ID: $(cat "$health" 2>/dev/null || echo 'no health report')" >&2
exit 1
