#!/usr/bin/env bash
# Create the databases of the stack if they are missing. The postgres image runs this once, on an empty
# data directory; it is safe to run again at any time:
#   docker compose -f docker/compose.yaml exec postgres bash /docker-entrypoint-initdb.d/10-databases.sh
set -euo pipefail

owner="${POSTGRES_USER:-postgres}"
for db in ${STACK_DATABASES:-mlflow metrics}; do
  # \gexec runs the generated statement only when the SELECT returns a row, i.e. when the database is missing.
  psql -v ON_ERROR_STOP=1 --username "$owner" --dbname postgres --set db="$db" --set owner="$owner" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL
done
