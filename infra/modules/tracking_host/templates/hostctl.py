#!/opt/driftloop/venv/bin/python
"""Secrets and databases for the tracking host's services.

The host's settings come from /etc/driftloop/host.env (no secrets in it); secrets are read from
Secrets Manager each time a service starts, so a rotated database password is picked up on restart.

  hostctl init-secrets    give each host-generated secret (Grafana admin, MLflow admin) a value once
  hostctl init-db         create the metrics and auth databases on RDS if they are missing
  hostctl exec [--db] [--grafana] [--mlflow-admin] -- CMD ARGS...
                          run CMD with the chosen secrets added to its environment
"""

import argparse
import json
import os
import secrets
import sys

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


def new_mlflow_admin_secret():
    return json.dumps(
        {
            "username": "admin",
            "password": secrets.token_urlsafe(24),
            "flask_secret_key": secrets.token_urlsafe(32),
        }
    )


def init_secrets(client):
    wanted = {
        "DRIFTLOOP_GRAFANA_SECRET_ARN": new_grafana_secret,
        "DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN": new_mlflow_admin_secret,
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
    if args.mlflow_admin and os.environ.get("DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN"):
        admin = json.loads(read_secret(client, os.environ["DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN"]))
        env["MLFLOW_TRACKING_USERNAME"] = admin["username"]
        env["MLFLOW_TRACKING_PASSWORD"] = admin["password"]
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = admin["flask_secret_key"]
    os.execvpe(command[0], command, env)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hostctl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("init-secrets", help="give host-generated secrets a value on first boot")
    sub.add_parser("init-db", help="create the metrics and auth databases if missing")
    run = sub.add_parser("exec", help="run a command with secrets in its environment")
    run.add_argument(
        "--db", action="store_true", help="database password (PGPASSWORD and the metrics settings)"
    )
    run.add_argument("--grafana", action="store_true", help="Grafana admin password")
    run.add_argument("--mlflow-admin", action="store_true", help="MLflow basic-auth admin, when enabled")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    client = secrets_client()
    if args.action == "init-secrets":
        init_secrets(client)
    elif args.action == "init-db":
        init_db(client)
    else:
        exec_with_secrets(client, args)


if __name__ == "__main__":
    main()
