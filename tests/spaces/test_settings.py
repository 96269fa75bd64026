from __future__ import annotations

from pathlib import Path

import pytest

from spaces.exceptions import ConfigError
from spaces.settings import Settings


def test_defaults_are_embedded() -> None:
    s = Settings.from_env({})
    assert s.catalog_url == "sqlite:///data/catalog.db"
    assert s.blob_dir == Path("data/blobs") and not s.s3_bucket
    assert s.api_url == "http://127.0.0.1:8000"


def test_environment_names() -> None:
    s = Settings.from_env(
        {"DATABASE_URL": "postgresql://db/x", "SPACES_API_PORT": "9000", "S3_BUCKET": "b",
         "SPACES_DATA_DIR": "/srv/spaces", "WHISPER_MODEL": "small.en"}
    )
    assert (s.database_url, s.api_port, s.s3_bucket, s.whisper_model) == ("postgresql://db/x", 9000, "b", "small.en")
    assert s.spool_dir == Path("/srv/spaces/spool")


def test_production_refuses_the_placeholder_secret() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env({"SPACES_ENV": "production"})
    assert Settings.from_env({"SPACES_ENV": "production", "SPACES_SECRET_KEY": "x" * 32}).env == "production"


@pytest.mark.parametrize("env", [{"SPACES_API_PORT": "eighty"}, {"DATABASE_URL": "mysql://x"}])
def test_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)
