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
  # init + fetch works for a branch, a tag or a commit id alike.
  git init --quiet "$src"
  git -C "$src" remote add origin "$DRIFTLOOP_GIT_URL"
  git -C "$src" fetch --quiet --depth 1 origin "$DRIFTLOOP_GIT_REF"
  git -C "$src" checkout --quiet FETCH_HEAD
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
extras=()
if [ "$DRIFTLOOP_ENABLE_BASIC_AUTH" = "true" ]; then
  extras+=("mlflow[auth]") # resolved together with the project, so its mlflow pin holds
fi
cd "$src"
# DRIFTLOOP_PIP_SPEC may name several requirements: split it on spaces on purpose.
read -r -a specs <<<"$DRIFTLOOP_PIP_SPEC"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${specs[@]}" "${extras[@]}"

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
