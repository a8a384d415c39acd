"""The local stack's layout: its ports, its state folder and the URLs they make; the database role and the
emulator's fake AWS credentials that its parts share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.settings import DEFAULT_BUCKET

DB_ROLE = "pipeline"
LOCAL_AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    pg_port: int = 15432
    s3_port: int = 4566
    mlflow_port: int = 5000
    bucket: str = DEFAULT_BUCKET
    host: str = "127.0.0.1"

    @property
    def pg_data(self) -> Path:
        return self.state_dir / "pg" / "data"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def snapshot_dir(self) -> Path:
        return self.state_dir / "s3-snapshot"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    def pg_url(self, database: str, user: str = DB_ROLE) -> str:
        return f"postgresql://{user}@{self.host}:{self.pg_port}/{database}"
