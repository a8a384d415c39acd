#!/opt/driftloop/venv/bin/python
"""Secrets and databases for the tracking host's services.

The host's settings come from /etc/driftloop/host.env (no secrets in it); secrets are read from
Secrets Manager each time a service starts (and at each monitor run).

Each service has a database role of its own (host.env names them, Secrets Manager keeps their passwords):
MLflow's owns the MLflow and auth databases, the monitor's owns the metrics database, Grafana's may only
SELECT in it. None of them is the RDS master user, whose managed password RDS rotates: only init-db,
init-db-roles and rotate-db-password use it, and they read it afresh each time.

  hostctl init-secrets      give each host-generated secret (Grafana admin and secret_key, MLflow admin
                            and monitor users, the three database roles) a value once
  hostctl init-db           create the metrics and auth databases on RDS if they are missing
  hostctl init-db-roles     as the master user: the services' roles, their passwords (from their secrets),
                            which database each owns or reads, and nothing else (idempotent)
  hostctl rotate-db-password mlflow|monitor|grafana
                            a new password for that role, in PostgreSQL and Secrets Manager (AWSPENDING,
                            then AWSCURRENT), then a restart of the service that holds it (the monitor's
                            runs read it at start; a rotation waits for a run under way to end)
  hostctl init-mlflow-users with basic auth: once MLflow answers, keep the monitor's user, its password
                            and its grants (MANAGE on each model of models.json, EDIT on the experiment),
                            as the admin
  hostctl first-champions   for each model of /etc/driftloop/models.json: its retraining mode and policy
                            (pipeline configure), then its first champion from its bootstrap training data
                            and schema when the registry has none (pipeline train --if-no-champion)
  hostctl exec [--db mlflow|monitor|grafana] [--grafana] [--mlflow-admin] [--mlflow-monitor] -- CMD ARGS...
                            run CMD with the chosen secrets added to its environment
"""

import argparse
import base64
import fcntl
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3


def secrets_client():
    return boto3.client("secretsmanager", region_name=os.environ["AWS_DEFAULT_REGION"])


def read_secret(client, arn):
    # AWSCURRENT, named: what AWS returns unasked, and what moto returns after a rotation's stage move.
    return client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]


def read_db_credentials(client):
    """The RDS master user (its password is managed and rotated by RDS): read afresh at each use."""
    data = json.loads(read_secret(client, os.environ["DRIFTLOOP_DB_SECRET_ARN"]))
    return data["username"], data["password"]


# A service's database role: the variable of host.env naming it, and the one naming its secret.
DB_ROLES = {
    "mlflow": ("DRIFTLOOP_DB_MLFLOW_USER", "DRIFTLOOP_DB_MLFLOW_SECRET_ARN"),
    "monitor": ("DRIFTLOOP_DB_MONITOR_USER", "DRIFTLOOP_DB_MONITOR_SECRET_ARN"),
    "grafana": ("DRIFTLOOP_DB_GRAFANA_USER", "DRIFTLOOP_DB_GRAFANA_SECRET_ARN"),
}
# What a role's rotation restarts so the service reconnects with the new password; the monitor's runs
# read their secret when they start, so nothing is restarted for them.
DB_ROLE_UNITS = {"mlflow": "driftloop-mlflow.service", "grafana": "driftloop-dashboards.service"}
# Held shared by every process started with the monitor's database password (`exec --db monitor`), and
# exclusively by the rotation of that password: a run under way keeps the password it started with.
MONITOR_DB_LOCK = "/var/lib/driftloop/db-password.lock"
MODELS_FILE = "/etc/driftloop/models.json"  # Terraform's `models`, written by cloud-init


def db_role_user(role):
    return os.environ[DB_ROLES[role][0]]


def read_db_role_password(client, role):
    return json.loads(read_secret(client, os.environ[DB_ROLES[role][1]]))["password"]


def new_db_role_secret(role):
    return lambda: json.dumps({"username": db_role_user(role), "password": secrets.token_urlsafe(24)})


def db_connect(dbname, user, password):
    """TLS as host.env says: verify-full against the RDS CA bundle by default."""
    import psycopg2

    return psycopg2.connect(
        host=os.environ["DRIFTLOOP_DB_HOST"],
        port=int(os.environ["DRIFTLOOP_DB_PORT"]),
        dbname=dbname,
        user=user,
        password=password,
        sslmode=os.environ.get("DRIFTLOOP_DB_SSLMODE") or "verify-full",
        sslrootcert=os.environ.get("DRIFTLOOP_DB_SSLROOTCERT") or None,
        connect_timeout=10,
    )


def master_connect(client, dbname):
    user, password = read_db_credentials(client)
    conn = db_connect(dbname, user, password)
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    return conn


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
        **{secret_env: new_db_role_secret(role) for role, (_, secret_env) in DB_ROLES.items()},
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
    from psycopg2 import sql

    names = [os.environ["DRIFTLOOP_METRICS_DB"]]
    if os.environ.get("DRIFTLOOP_AUTH_DB"):
        names.append(os.environ["DRIFTLOOP_AUTH_DB"])
    conn = master_connect(client, os.environ["DRIFTLOOP_MLFLOW_DB"])
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    print(f"created database {name}")
    finally:
        conn.close()


def set_role_password(conn, user, password):
    """The SCRAM verifier is computed here: the clear password never reaches the server or its logs."""
    from psycopg2 import sql
    from psycopg2.extensions import encrypt_password

    verifier = encrypt_password(password, user, conn, "scram-sha-256")
    with conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)), (verifier,))


def hand_over(conn, owner):
    """Give `owner` what the master user created in this database's public schema (before the roles existed)."""
    from psycopg2 import sql

    mine = "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    with conn.cursor() as cur:
        # Tables first: a serial or identity column's sequence follows its table and cannot be moved alone.
        for kind_set in (("r", "p", "v", "m"), ("S",)):
            cur.execute(
                f"""SELECT c.relkind, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relowner = {mine} AND c.relkind = ANY(%s)
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                    AND d.objid = c.oid AND d.deptype IN ('a', 'i'))""",
                (list(kind_set),),
            )
            for kind, name in cur.fetchall():
                cur.execute(
                    sql.SQL("ALTER {} public.{} OWNER TO {}").format(
                        sql.SQL(kinds[kind]), sql.Identifier(name), sql.Identifier(owner)
                    )
                )
        cur.execute(
            f"""SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = 'public' AND t.typowner = {mine} AND t.typtype IN ('e', 'd')"""
        )
        for (name,) in cur.fetchall():
            cur.execute(sql.SQL("ALTER TYPE public.{} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner)))


def init_db_roles(client):
    """As the master user: each service's role, its password (its secret is the truth) and its databases."""
    from psycopg2 import sql

    ident = sql.Identifier
    users = {role: db_role_user(role) for role in DB_ROLES}
    mlflow_dbs = [os.environ["DRIFTLOOP_MLFLOW_DB"]]
    if os.environ.get("DRIFTLOOP_AUTH_DB"):
        mlflow_dbs.append(os.environ["DRIFTLOOP_AUTH_DB"])
    metrics_db = os.environ["DRIFTLOOP_METRICS_DB"]
    owners = {**{name: users["mlflow"] for name in mlflow_dbs}, metrics_db: users["monitor"]}
    conn = master_connect(client, mlflow_dbs[0])
    try:
        with conn.cursor() as cur:
            for role, user in users.items():
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident(user)))
                    print(f"created database role {user}")
                set_role_password(conn, user, read_db_role_password(client, role))
                # The master may act for it: hand it databases, set its default privileges.
                cur.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(ident(user)))
            for name, owner in owners.items():
                cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident(name), ident(owner)))
                # Only the roles named here connect: its owner, the master (this program), Grafana's to the metrics.
                cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident(name)))
                cur.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO CURRENT_USER").format(ident(name)))
            cur.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(ident(metrics_db), ident(users["grafana"]))
            )
    finally:
        conn.close()
    for name, owner in owners.items():
        conn = master_connect(client, name)
        try:
            hand_over(conn, owner)
            if name == metrics_db:
                with conn.cursor() as cur:
                    # Grafana reads every table of the monitor's, those it creates later included, and writes none.
                    cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # PostgreSQL 14's default grants it
                    cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident(users["grafana"])))
                    cur.execute(
                        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(ident(users["grafana"]))
                    )
                    cur.execute(
                        sql.SQL(
                            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}"
                        ).format(ident(owner), ident(users["grafana"]))
                    )
        finally:
            conn.close()
    print(
        f"database roles: {users['mlflow']} owns {', '.join(mlflow_dbs)}; {users['monitor']} owns {metrics_db}; "
        f"{users['grafana']} may SELECT in {metrics_db}"
    )


def hold_monitor_db_lock(exclusive):
    """The monitor's password lock (see MONITOR_DB_LOCK); None where the host's folder does not exist."""
    try:
        fd = os.open(MONITOR_DB_LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    return fd


def rotate_db_password(client, role):
    """A new password for a service's role: staged in Secrets Manager, set in PostgreSQL, then made current.

    A failure before the last step leaves AWSCURRENT with the old password, which the next start of MLflow
    (init-db-roles) sets again; the new one stays readable as AWSPENDING until then.
    """
    secret_id = os.environ[DB_ROLES[role][1]]
    user = db_role_user(role)
    if role == "monitor":
        hold_monitor_db_lock(exclusive=True)  # released when this process ends
    password = secrets.token_urlsafe(24)
    pending = client.put_secret_value(
        SecretId=secret_id,
        SecretString=json.dumps({"username": user, "password": password}),
        VersionStages=["AWSPENDING"],
    )["VersionId"]
    conn = master_connect(client, os.environ["DRIFTLOOP_MLFLOW_DB"])
    try:
        set_role_password(conn, user, password)
    finally:
        conn.close()
    stages = client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    current = next(version for version, labels in stages.items() if "AWSCURRENT" in labels)
    client.update_secret_version_stage(
        SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=pending, RemoveFromVersionId=current
    )
    print(f"rotated the password of database role {user}")
    if role in DB_ROLE_UNITS:
        # try-restart: a stopped service stays stopped, a running one reconnects with the new password.
        subprocess.run(["systemctl", "try-restart", DB_ROLE_UNITS[role]], check=True)


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
    # Each model: register versions, move and delete its aliases (MANAGE; the grant may precede the model).
    models = sorted(read_models())
    for model in models:
        grant(api, user["username"], "registered_model", model, "MANAGE")
    # The experiment its runs go to: created here if missing, so the grant has an id to name.
    name = os.environ.get("PIPELINE_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    status, payload = api.call("GET", "/api/2.0/mlflow/experiments/get-by-name", query={"experiment_name": name})
    if status == 200:
        experiment_id = payload["experiment"]["experiment_id"]
    else:
        experiment_id = api.ok("POST", "/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]
    grant(api, user["username"], "experiment", experiment_id, "EDIT")
    print(f"MLflow user {user['username']}: MANAGE on models {', '.join(models)}, EDIT on experiment {name}")


def read_models():
    """The host's models (Terraform's `models`): name -> schema, retrain, policy, bootstrap_training_data."""
    with open(os.environ.get("DRIFTLOOP_MODELS_FILE", MODELS_FILE)) as f:
        return json.load(f)


def model_commands(name, model):
    """The `pipeline` commands that set a model up: its mode and policy, then its first champion if it has data."""
    commands = []
    configure = [f"--set={key}={value}" for key, value in sorted((model.get("policy") or {}).items())]
    if model.get("retrain"):
        configure.insert(0, f"--retrain={model['retrain']}")
    if configure:
        commands.append(["configure", f"--model-name={name}", *configure])
    if model.get("bootstrap_training_data"):
        train = ["train", f"--model-name={name}", f"--data={model['bootstrap_training_data']}", "--if-no-champion"]
        commands.append(train + ([f"--schema={model['schema']}"] if model.get("schema") else []))
    return commands


def first_champions(client, pipeline="/opt/driftloop/venv/bin/pipeline"):
    """Each model set up in turn; one that fails does not stop the others, and the unit fails (and is retried)."""
    lock = hold_monitor_db_lock(exclusive=False)  # a password rotation waits for these runs, as for a monitor run
    env = secrets_env(client, db="monitor", mlflow_monitor=True)
    failed = []
    for name, model in sorted(read_models().items()):
        for command in model_commands(name, model):
            print(f"{name}: pipeline {' '.join(command)}", flush=True)
            if subprocess.run([pipeline, *command], env=env).returncode != 0:
                failed.append(name)
                break
        else:
            if not model.get("bootstrap_training_data"):
                print(f"{name}: no bootstrap training data; train its first champion by hand (see the README)")
    if lock is not None:
        os.close(lock)
    if failed:
        sys.exit(f"hostctl first-champions: failed for {', '.join(failed)}")


def secrets_env(client, db=None, grafana=False, mlflow_admin=False, mlflow_monitor=False):
    """This process's environment with the chosen secrets added."""
    env = dict(os.environ)
    if db:
        # The service's own role, never the master user.
        password = read_db_role_password(client, db)
        if db == "grafana":
            env["METRICS_DB_PASSWORD"] = password  # Grafana's datasource (docker/compose.yaml)
        else:
            env["PGPASSWORD"] = password  # libpq: MLflow's backend and auth stores carry no password in their URIs
            if db == "monitor":
                env["PIPELINE_METRICS_DB_PASSWORD"] = password
    if grafana:
        env["GF_SECURITY_ADMIN_PASSWORD"] = read_secret(client, os.environ["DRIFTLOOP_GRAFANA_SECRET_ARN"])
        if os.environ.get("DRIFTLOOP_GRAFANA_SECRET_KEY_ARN"):
            env["GF_SECURITY_SECRET_KEY"] = read_secret(client, os.environ["DRIFTLOOP_GRAFANA_SECRET_KEY_ARN"])
    if mlflow_admin and os.environ.get("DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN"):
        # For the server: the admin it creates in an empty user database, and its session key.
        admin = json.loads(read_secret(client, os.environ["DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN"]))
        env["MLFLOW_AUTH_ADMIN_USERNAME"] = admin["username"]
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = admin["password"]
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = admin["flask_secret_key"]
    if mlflow_monitor and os.environ.get("DRIFTLOOP_MLFLOW_MONITOR_SECRET_ARN"):
        # For the pipeline: MLflow's client sends these as basic auth.
        monitor = json.loads(read_secret(client, os.environ["DRIFTLOOP_MLFLOW_MONITOR_SECRET_ARN"]))
        env["MLFLOW_TRACKING_USERNAME"] = monitor["username"]
        env["MLFLOW_TRACKING_PASSWORD"] = monitor["password"]
    return env


def exec_with_secrets(client, args):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("hostctl exec: no command given")
    if args.db == "monitor":
        lock = hold_monitor_db_lock(exclusive=False)  # held by the command until it ends
        if lock is not None:
            os.set_inheritable(lock, True)
    env = secrets_env(client, args.db, args.grafana, args.mlflow_admin, args.mlflow_monitor)
    os.execvpe(command[0], command, env)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hostctl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("init-secrets", help="give host-generated secrets a value on first boot")
    sub.add_parser("init-db", help="create the metrics and auth databases if missing")
    sub.add_parser("init-db-roles", help="as the master user: the services' database roles and their grants")
    rotate = sub.add_parser("rotate-db-password", help="a new password for a service's database role")
    rotate.add_argument("role", choices=sorted(DB_ROLES))
    sub.add_parser("init-mlflow-users", help="with basic auth: the monitor's MLflow user and its grants")
    sub.add_parser("first-champions", help="each model's mode and policy, and its first champion if it has data")
    run = sub.add_parser("exec", help="run a command with secrets in its environment")
    run.add_argument(
        "--db", choices=sorted(DB_ROLES), help="this service's database password (PGPASSWORD, the metrics settings)"
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
    elif args.action == "init-db-roles":
        init_db_roles(client)
    elif args.action == "rotate-db-password":
        rotate_db_password(client, args.role)
    elif args.action == "init-mlflow-users":
        init_mlflow_users(client)
    elif args.action == "first-champions":
        first_champions(client)
    else:
        exec_with_secrets(client, args)


if __name__ == "__main__":
    main()
