#!/usr/bin/env bash
# Run a `pipeline` command the way the monitor timer runs it: as the driftloop user, with the host's
# settings from /etc/driftloop/host.env, the monitor's database password and MLflow user from
# Secrets Manager (hostctl).
#   sudo -u driftloop /usr/local/lib/driftloop/run-pipeline train --data s3://BUCKET/training/reference.csv
set -euo pipefail

if [ "$(id -un)" != "driftloop" ]; then
  echo "run it as the driftloop user: sudo -u driftloop $0 $*" >&2
  exit 2
fi

set -a
# shellcheck source=/dev/null
. /etc/driftloop/host.env
set +a
export HOME=/var/lib/driftloop
cd /var/lib/driftloop
exec /usr/local/lib/driftloop/hostctl exec --db monitor --mlflow-monitor -- /opt/driftloop/venv/bin/pipeline "$@"
