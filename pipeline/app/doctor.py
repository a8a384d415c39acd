"""``pipeline doctor``: the settings in effect (secrets masked) and whether each server answers, one line each.

Each check is quick and tries once: MLflow's health and a signed-in call (a wrong login is said as such), the
metrics database's login, the artifact bucket. Nothing is written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from pipeline.domain.values import one_line
from pipeline.settings import Settings

MASK = "****"


@dataclass(frozen=True)
class Check:
    part: str
    ok: bool
    detail: str


def masked_url(url: str) -> str:
    """``url`` with any password in it masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:{MASK}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def settings_in_effect(settings: Settings) -> list[tuple[str, str, str]]:
    """Every setting as (variable, value shown, where it came from), secrets masked."""
    rows = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = MASK
        elif isinstance(value, str) and "://" in value:
            shown = masked_url(value)
        else:
            shown = "" if value is None else str(value)
        source = "set" if name in settings.model_fields_set else "default"
        rows.append((f"PIPELINE_{name.upper()}", shown, source))
    return rows


def check_tracking(settings: Settings) -> Check:
    """MLflow's health answer, then one signed-in call (a server with a login refuses a wrong one with 401/403)."""
    from pipeline.model import tracking

    uri = masked_url(settings.tracking_uri)
    try:
        tracking.check_server(settings.tracking_uri)
    except tracking.TrackingUnavailable as err:
        return Check("MLflow", False, str(err))
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient(settings.tracking_uri).search_experiments(max_results=1)
    except MlflowException as err:
        said = one_line(err, 200)
        if "401" in said or "403" in said or "Unauthorized" in said or "Permission" in said:
            return Check("MLflow", False, f"{uri} refused the login (MLFLOW_TRACKING_USERNAME/PASSWORD): {said}")
        return Check("MLflow", False, f"{uri}: {said}")
    return Check("MLflow", True, f"{uri} answers and lets this login in")


def check_metrics_db(settings: Settings) -> Check:
    from pipeline.io.store import MetricsStore, StoreUnavailable

    where = masked_url(settings.metrics_db_url)
    try:
        version = MetricsStore(settings.metrics_dsn()).ping()
    except StoreUnavailable as err:
        return Check("metrics database", False, f"{where}: {err}")
    return Check("metrics database", True, f"{where}: PostgreSQL {version}")


def check_artifact_store(settings: Settings) -> Check:
    """The artifact bucket: there, and readable with the credentials in effect."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.io.aws import make_aws_client
    from pipeline.io.tables import s3_failure

    bucket = f"s3://{settings.artifact_bucket}"
    endpoint = settings.s3_endpoint_url or "AWS"
    try:
        make_aws_client("s3", settings.s3_endpoint_url, settings.aws_region).head_bucket(
            Bucket=settings.artifact_bucket
        )
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", "?"))
        what = {"404": "no such bucket", "NoSuchBucket": "no such bucket", "403": "access denied"}.get(code, code)
        return Check("artifact store", False, f"{bucket} at {endpoint}: {what} (PIPELINE_ARTIFACT_BUCKET)")
    except BotoCoreError as err:
        return Check("artifact store", False, str(s3_failure(bucket, err)))
    return Check("artifact store", True, f"{bucket} reachable at {endpoint}")


def run_checks(settings: Settings) -> list[Check]:
    return [check_tracking(settings), check_metrics_db(settings), check_artifact_store(settings)]
