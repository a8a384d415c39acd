#!/usr/bin/env bash
# Start the MLflow tracking server. Run by driftloop-mlflow.service through `hostctl exec --db
# --mlflow-admin`, so PGPASSWORD (and the basic-auth admin, when enabled) are in the environment.
set -euo pipefail

imds() {
  local token
  token=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" \
    http://169.254.169.254/latest/api/token) || return 0
  curl -sf -H "X-aws-ec2-metadata-token: $token" \
    "http://169.254.169.254/latest/meta-data/$1" || true
}

port="$DRIFTLOOP_MLFLOW_PORT"

# MLflow 3 checks the Host header: allow the names this host is reached by, read at every start
# because the public name changes when the instance is stopped and started.
hosts="localhost:$port,127.0.0.1:$port"
for name in "$(imds public-hostname)" "$(imds public-ipv4)" "$(imds local-hostname)" "$(imds local-ipv4)"; do
  if [ -n "$name" ]; then
    hosts="$hosts,$name,$name:$port"
  fi
done
if [ -n "${DRIFTLOOP_EXTRA_ALLOWED_HOSTS:-}" ]; then
  hosts="$hosts,$DRIFTLOOP_EXTRA_ALLOWED_HOSTS"
fi

# The driver is named: SQLAlchemy 2.1 defaults postgresql:// to psycopg 3, which the project does not install.
db="postgresql+psycopg2://$DRIFTLOOP_DB_USER@$DRIFTLOOP_DB_HOST:$DRIFTLOOP_DB_PORT"
args=(
  server
  --host 0.0.0.0
  --port "$port"
  --backend-store-uri "$db/$DRIFTLOOP_MLFLOW_DB?sslmode=require"
  --serve-artifacts
  --artifacts-destination "s3://$DRIFTLOOP_ARTIFACT_BUCKET/mlflow"
  --allowed-hosts "$hosts"
)

if [ "${DRIFTLOOP_ENABLE_BASIC_AUTH:-false}" = "true" ]; then
  config="${RUNTIME_DIRECTORY:-/run/driftloop-mlflow}/basic_auth.ini"
  umask 077
  cat >"$config" <<INI
[mlflow]
default_permission = READ
database_uri = $db/$DRIFTLOOP_AUTH_DB?sslmode=require
admin_username = $MLFLOW_TRACKING_USERNAME
admin_password = $MLFLOW_TRACKING_PASSWORD
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
  export MLFLOW_AUTH_CONFIG_PATH="$config"
  args+=(--app-name basic-auth)
fi

exec /opt/driftloop/venv/bin/mlflow "${args[@]}"
