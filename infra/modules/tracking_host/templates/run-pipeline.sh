#!/usr/bin/env bash
# Run a `pipeline` command the way the monitor timer runs it: as the triage user, with the host's
# settings from /etc/triage/host.env and the database password from Secrets Manager (hostctl).
#   sudo -u triage /usr/local/lib/triage/run-pipeline train --data s3://BUCKET/training/reference.csv
set -euo pipefail

if [ "$(id -un)" != "triage" ]; then
  echo "run it as the triage user: sudo -u triage $0 $*" >&2
  exit 2
fi

set -a
# shellcheck source=/dev/null
. /etc/triage/host.env
set +a
export HOME=/var/lib/triage
cd /var/lib/triage
exec /usr/local/lib/triage/hostctl exec --db --mlflow-admin -- /opt/triage/venv/bin/pipeline "$@"
