"""AWS clients for the stack's services (S3, SNS): the endpoint decides between moto, LocalStack and AWS.

Kept apart from the table readers so that a command needing only a client (``pipeline notify``) does not import
pandas.
"""

from __future__ import annotations

from typing import Any

EMULATOR_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def make_aws_client(service: str, endpoint_url: str | None, region: str) -> Any:
    """A boto3 client of ``service`` (s3, sns); the endpoint decides between moto, LocalStack and AWS.

    With an endpoint (the local stack) and no credentials anywhere in the normal chain, the emulator's fake ones
    are used: a laptop needs no AWS account. Without an endpoint (AWS itself) the normal chain applies.
    """
    import boto3

    session = boto3.session.Session()
    extra = EMULATOR_CREDENTIALS if endpoint_url and session.get_credentials() is None else {}
    return session.client(service, endpoint_url=endpoint_url, region_name=region, **extra)
