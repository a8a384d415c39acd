#!/usr/bin/env bash
# Start the MLflow tracking server. Run by driftloop-mlflow.service through `hostctl exec --db mlflow
# --mlflow-admin`, so PGPASSWORD (MLflow's own database role's) and the basic-auth admin, when enabled,
# are in the environment.
set -euo pipefail

port="$DRIFTLOOP_MLFLOW_PORT"

# On 127.0.0.1 only: people reach it through SSM port forwarding, which connects from the host itself.
# MLflow 3 checks the Host header; a forwarded request carries localhost:<the local port>.
hosts="localhost,localhost:*,127.0.0.1,127.0.0.1:*"
if [ -n "${DRIFTLOOP_EXTRA_ALLOWED_HOSTS:-}" ]; then
  hosts="$hosts,$DRIFTLOOP_EXTRA_ALLOWED_HOSTS"
fi

# The driver is named: SQLAlchemy 2.1 defaults postgresql:// to psycopg 3, which the project does not install.
db="postgresql+psycopg2://$DRIFTLOOP_DB_MLFLOW_USER@$DRIFTLOOP_DB_HOST:$DRIFTLOOP_DB_PORT"
tls="sslmode=$DRIFTLOOP_DB_SSLMODE&sslrootcert=$DRIFTLOOP_DB_SSLROOTCERT"
args=(
  server
  --host 127.0.0.1
  --port "$port"
  --backend-store-uri "$db/$DRIFTLOOP_MLFLOW_DB?$tls"
  --serve-artifacts
  --artifacts-destination "s3://$DRIFTLOOP_ARTIFACT_BUCKET/mlflow"
  --allowed-hosts "$hosts"
)

if [ "${DRIFTLOOP_ENABLE_BASIC_AUTH:-false}" = "true" ]; then
  # No password in the file: the admin comes from MLFLOW_AUTH_ADMIN_USERNAME/PASSWORD (hostctl), and
  # MLflow creates it on the first start against the empty user database. A checked login is kept for 60 s
  # (a password hash per request would cost most of a monitor run's time); a changed password waits that long.
  config="${RUNTIME_DIRECTORY:-/run/driftloop-mlflow}/basic_auth.ini"
  umask 077
  cat >"$config" <<INI
[mlflow]
default_permission = READ
database_uri = $db/$DRIFTLOOP_AUTH_DB?$tls
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
INI
  export MLFLOW_AUTH_CONFIG_PATH="$config"
  args+=(--app-name basic-auth)
fi

exec /opt/driftloop/venv/bin/mlflow "${args[@]}"
