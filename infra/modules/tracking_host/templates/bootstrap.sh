#!/usr/bin/env bash
# First boot of the tracking host, run once by cloud-init as root: fetch and install the project,
# then start MLflow, the dashboards and the monitor timer.
set -euo pipefail

set -a
# shellcheck source=/dev/null
. /etc/driftloop/host.env
set +a

if ! id driftloop >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/driftloop --create-home --shell /usr/sbin/nologin driftloop
fi

src=/opt/driftloop/src
venv=/opt/driftloop/venv
if [ ! -d "$src/.git" ]; then
  # The pinned commit by its id (a branch or a tag could move): fetched alone, then checked out detached.
  git init --quiet "$src"
  git -C "$src" remote add origin "$DRIFTLOOP_GIT_URL"
  git -C "$src" fetch --quiet --depth 1 origin "$DRIFTLOOP_GIT_COMMIT"
  git -C "$src" checkout --quiet --detach FETCH_HEAD
fi
head=$(git -C "$src" rev-parse HEAD)
if [ "$head" != "$DRIFTLOOP_GIT_COMMIT" ]; then
  echo "bootstrap: $src is at $head, not at the pinned commit $DRIFTLOOP_GIT_COMMIT; nothing installed" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
cd "$src"
# Exactly the versions that commit's lock pins (the runtime dependencies and mlflow[auth]), each checked
# against its hashes, then the project itself without resolving anything more.
"$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r requirements/runtime.lock
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps .

# The CA bundle that signs RDS's certificates: every database client verifies the server against it
# (sslmode=verify-full by default). Over HTTPS only, and checked against its SHA-256 when one is pinned.
ca="$DRIFTLOOP_DB_SSLROOTCERT"
if [ -n "${DRIFTLOOP_DB_CA_BUNDLE_URL:-}" ] && [ ! -s "$ca" ]; then
  curl --fail --silent --show-error --location --proto '=https,file' --retry 5 \
    --output "$ca.download" "$DRIFTLOOP_DB_CA_BUNDLE_URL"
  if [ -n "${DRIFTLOOP_DB_CA_BUNDLE_SHA256:-}" ]; then
    echo "$DRIFTLOOP_DB_CA_BUNDLE_SHA256  $ca.download" | sha256sum --check --quiet
  fi
  openssl x509 -noout -in "$ca.download" # a PEM certificate, not an error page
  chmod 0644 "$ca.download"
  mv "$ca.download" "$ca"
fi

systemctl daemon-reload
systemctl enable --now docker.service
systemctl enable --now driftloop-mlflow.service
systemctl enable --now driftloop-dashboards.service
# Each model's mode and policy, and a first champion for those with bootstrap training data and none in the
# registry yet; --no-block: training takes minutes.
systemctl enable --now --no-block driftloop-first-champion.service
systemctl enable --now driftloop-monitor.timer
systemctl enable --now driftloop-db-password-rotation.timer
