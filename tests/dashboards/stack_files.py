"""Where the stack's files live in the repository."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DOCKER = ROOT / "docker"
LOCALSTACK = ROOT / "localstack"
