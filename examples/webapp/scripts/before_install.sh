#!/bin/sh
# BeforeInstall: create the directories the revision installs into and keeps its state in.
set -eu
root="${CUTOVER_HOST_ROOT:-}"
root="${root%/}"
mkdir -p "$root/srv/webapp" "$root/etc/webapp" "$root/var/lib/webapp"
echo "$LIFECYCLE_EVENT: ready to install deployment $DEPLOYMENT_ID"
