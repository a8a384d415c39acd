#!/opt/driftloop/venv/bin/python
"""Secrets and databases for the tracking host's services.

The host's settings come from /etc/driftloop/host.env (no secrets in it); secrets are read from
Secrets Manager each time a service starts, so a rotated database password is picked up on restart.

  hostctl init-secrets      give each host-generated secret (Grafana admin and secret_key, MLflow admin
                            and monitor users) a value once
  hostctl init-db           create the metrics and auth databases on RDS if they are missing
  hostctl init-mlflow-users with basic auth: once MLflow answers, keep the monitor's user, its password
                            and its grants (MANAGE on the model, EDIT on the experiment), as the admin
  hostctl exec [--db] [--grafana] [--mlflow-admin] [--mlflow-monitor] -- CMD ARGS...
                            run CMD with the chosen secrets added to its environment
"""

import argparse
import base64
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3


def secrets_client():
    return boto3.client("secretsmanager", region_name=os.environ["AWS_DEFAULT_REGION"])


def read_secret(client, arn):
    return client.get_secret_value(SecretId=arn)["SecretString"]


def read_db_credentials(client):
    data = json.loads(read_secret(client, os.environ["DRIFTLOOP_DB_SECRET_ARN"]))
    return data["username"], data["password"]


def new_grafana_secret():
    return secrets.token_urlsafe(24)


def new_grafana_secret_key():
    return secrets.token_urlsafe(32)


def new_mlflow_admin_secret():
    return json.dumps(
        {
            "username": "admin",
            "password": secrets.token_urlsafe(24),
            "flask_secret_key": secrets.token_urlsafe(32),
        }
    )


MONITOR_USER = "driftloop-monitor"
# The pipeline's default experiment (pipeline/settings.py), unless host.env sets PIPELINE_EXPERIMENT_NAME.
DEFAULT_EXPERIMENT = "driftloop"


def new_mlflow_monitor_secret():
    return json.dumps({"username": MONITOR_USER, "password": secrets.token_urlsafe(24)})


def init_secrets(client):
    wanted = {
        "DRIFTLOOP_GRAFANA_SECRET_ARN": new_grafana_secret,
        "DRIFTLOOP_GRAFANA_SECRET_KEY_ARN": new_grafana_secret_key,
        "DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN": new_mlflow_admin_secret,
        "DRIFTLOOP_MLFLOW_MONITOR_SECRET_ARN": new_mlflow_monitor_secret,
    }
    for env_name, make_value in wanted.items():
        arn = os.environ.get(env_name, "")
        if not arn:
            continue
        try:
            client.get_secret_value(SecretId=arn)
        except client.exceptions.ResourceNotFoundException:
            # The secret exists without a value until the first boot gives it one.
            client.put_secret_value(SecretId=arn, SecretString=make_value())
            print(f"generated a value for {env_name}")


def init_db(client):
    import psycopg2
    from psycopg2 import sql

    user, password = read_db_credentials(client)
    names = [os.environ["DRIFTLOOP_METRICS_DB"]]
    if os.environ.get("DRIFTLOOP_AUTH_DB"):
        names.append(os.environ["DRIFTLOOP_AUTH_DB"])
    conn = psycopg2.connect(
        host=os.environ["DRIFTLOOP_DB_HOST"],
        port=int(os.environ["DRIFTLOOP_DB_PORT"]),
        dbname=os.environ["DRIFTLOOP_MLFLOW_DB"],
        user=user,
        password=password,
        sslmode="require",
        connect_timeout=10,
    )
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    print(f"created database {name}")
    finally:
        conn.close()


class MlflowAdmin:
    """MLflow's REST API, as the basic-auth admin, on the host's own 127.0.0.1."""

    def __init__(self, base_url, username, password):
        self.base_url = base_url.rstrip("/")
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None, query=None):
        """(HTTP status, JSON body); an error status is returned, not raised."""
        url = f"{self.base_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text) if text else {}
        except ValueError:
            return status, {"message": text}

    def ok(self, method, path, body=None, query=None):
        status, payload = self.call(method, path, body, query)
        if status != 200:
            sys.exit(f"hostctl: {method} {path} answered {status}: {payload}")
        return payload


def wait_for_mlflow(base_url, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=5):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                sys.exit(f"hostctl: MLflow did not answer on {base_url}/health within {timeout} s")
            time.sleep(2)


def grant(api, username, resource_type, resource_id, permission):
    """Give the user exactly this permission on the resource (a grant that exists is replaced)."""
    body = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
    path = "/api/3.0/mlflow/users/permissions"
    status, payload = api.call("POST", f"{path}/grant", {**body, "permission": permission})
    if status != 200 and payload.get("error_code") == "RESOURCE_ALREADY_EXISTS":
        api.ok("POST", f"{path}/revoke", body)
        status, payload = api.call("POST", f"{path}/grant", {**body, "permission": permission})
    if status != 200:
        sys.exit(f"hostctl: granting {permission} on {resource_type} {resource_id} answered {status}: {payload}")


def init_mlflow_users(client, timeout=300):
    """The monitor's MLflow user and its grants; run after MLflow starts, as its admin (idempotent)."""
    if not os.environ.get("DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN"):
        return  # basic auth is off
    base_url = f"http://127.0.0.1:{os.environ['DRIFTLOOP_MLFLOW_PORT']}"
    wait_for_mlflow(base_url, timeout)
    admin = json.loads(read_secret(client, os.environ["DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN"]))
    monitor = json.loads(read_secret(client, os.environ["DRIFTLOOP_MLFLOW_MONITOR_SECRET_ARN"]))
    api = MlflowAdmin(base_url, admin["username"], admin["password"])
    user = {"username": monitor["username"], "password": monitor["password"]}
    status, _ = api.call("GET", "/api/2.0/mlflow/users/get", query={"username": user["username"]})
    if status == 200:
        api.ok("PATCH", "/api/2.0/mlflow/users/update-password", user)  # the secret is the truth
    else:
        api.ok("POST", "/api/2.0/mlflow/users/create", user)
        print(f"created MLflow user {user['username']}")
    # The model: register versions, move and delete its aliases (MANAGE; the grant may precede the model).
    grant(api, user["username"], "registered_model", os.environ["PIPELINE_MODEL_NAME"], "MANAGE")
    # The experiment its runs go to: created here if missing, so the grant has an id to name.
    name = os.environ.get("PIPELINE_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    status, payload = api.call("GET", "/api/2.0/mlflow/experiments/get-by-name", query={"experiment_name": name})
    if status == 200:
        experiment_id = payload["experiment"]["experiment_id"]
    else:
        experiment_id = api.ok("POST", "/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]
    grant(api, user["username"], "experiment", experiment_id, "EDIT")
    model = os.environ["PIPELINE_MODEL_NAME"]
    print(f"MLflow user {user['username']}: MANAGE on model {model}, EDIT on experiment {name}")


def exec_with_secrets(client, args):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("hostctl exec: no command given")
    env = dict(os.environ)
    if args.db:
        _, password = read_db_credentials(client)
        env["PGPASSWORD"] = (
            password  # libpq: MLflow's backend and auth stores carry no password in their URIs
        )
        env["PIPELINE_METRICS_DB_PASSWORD"] = password
        env["METRICS_DB_PASSWORD"] = password
    if args.grafana:
        env["GF_SECURITY_ADMIN_PASSWORD"] = read_secret(client, os.environ["DRIFTLOOP_GRAFANA_SECRET_ARN"])
        if os.environ.get("DRIFTLOOP_GRAFANA_SECRET_KEY_ARN"):
            env["GF_SECURITY_SECRET_KEY"] = read_secret(client, os.environ["DRIFTLOOP_GRAFANA_SECRET_KEY_ARN"])
    if args.mlflow_admin and os.environ.get("DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN"):
        # For the server: the admin it creates in an empty user database, and its session key.
        admin = json.loads(read_secret(client, os.environ["DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN"]))
        env["MLFLOW_AUTH_ADMIN_USERNAME"] = admin["username"]
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = admin["password"]
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = admin["flask_secret_key"]
    if args.mlflow_monitor and os.environ.get("DRIFTLOOP_MLFLOW_MONITOR_SECRET_ARN"):
        # For the pipeline: MLflow's client sends these as basic auth.
        monitor = json.loads(read_secret(client, os.environ["DRIFTLOOP_MLFLOW_MONITOR_SECRET_ARN"]))
        env["MLFLOW_TRACKING_USERNAME"] = monitor["username"]
        env["MLFLOW_TRACKING_PASSWORD"] = monitor["password"]
    os.execvpe(command[0], command, env)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hostctl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("init-secrets", help="give host-generated secrets a value on first boot")
    sub.add_parser("init-db", help="create the metrics and auth databases if missing")
    sub.add_parser("init-mlflow-users", help="with basic auth: the monitor's MLflow user and its grants")
    run = sub.add_parser("exec", help="run a command with secrets in its environment")
    run.add_argument(
        "--db", action="store_true", help="database password (PGPASSWORD and the metrics settings)"
    )
    run.add_argument("--grafana", action="store_true", help="Grafana admin password")
    run.add_argument("--mlflow-admin", action="store_true", help="MLflow basic-auth admin, for the server")
    run.add_argument("--mlflow-monitor", action="store_true", help="the monitor's MLflow user, for the pipeline")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    client = secrets_client()
    if args.action == "init-secrets":
        init_secrets(client)
    elif args.action == "init-db":
        init_db(client)
    elif args.action == "init-mlflow-users":
        init_mlflow_users(client)
    else:
        exec_with_secrets(client, args)


if __name__ == "__main__":
    main()
