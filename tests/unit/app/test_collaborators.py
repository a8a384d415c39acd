"""Another model's collaborators: its own settings' name, registry and prediction log; the same store and S3 client."""

from __future__ import annotations

from pipeline.app.collaborators import Collaborators
from pipeline.settings import Settings


def test_another_model_s_collaborators_share_the_store_and_the_s3_client_and_name_that_model():
    parts = Collaborators(Settings(_env_file=None, model_name="first"))
    store, s3 = object(), object()
    parts.__dict__.update(store=store, s3=s3)  # as if built: no database, no S3 here
    other = parts.for_model("second")
    assert other.settings.model_name == "second" and parts.settings.model_name == "first"
    assert other.settings.metrics_db_url == parts.settings.metrics_db_url
    assert other.store is store and other.s3 is s3
    assert "registry" not in other.__dict__  # its own, made on first use


def test_an_s3_client_not_made_yet_is_not_made_for_another_model():
    parts = Collaborators(Settings(_env_file=None))
    parts.__dict__["store"] = object()
    assert "s3" not in parts.for_model("second").__dict__
