from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from spaces.exceptions import ConfigError
from spaces.settings import DEV_SECRET, Settings, secret_weakness
from spaces.variables import variables


def test_defaults_are_embedded() -> None:
    s = Settings.from_env({})
    assert s.catalog_url == "sqlite:///data/catalog.db"
    assert s.blob_dir == Path("data/blobs") and not s.s3_bucket
    assert s.api_url == "http://127.0.0.1:8000"


def test_environment_names() -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://db/x",
            "SPACES_API_PORT": "9000",
            "S3_BUCKET": "b",
            "SPACES_DATA_DIR": "/srv/spaces",
            "WHISPER_MODEL": "small.en",
        }
    )
    assert (s.database_url, s.api_port, s.s3_bucket, s.whisper_model) == ("postgresql://db/x", 9000, "b", "small.en")
    assert s.spool_dir == Path("/srv/spaces/spool")


def test_production_refuses_the_placeholder_secret() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env({"SPACES_ENV": "production"})


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "a",
        DEV_SECRET + " ",
        " " + DEV_SECRET,
        DEV_SECRET.upper() + "-2",
        "x" * 32,
        "x" * 64,
        "correct horse battery staple",
        "abcdefghij" * 7,
        # Made once by the secrets module (fixed, so that parallel test
        # workers collect the same test ids):
        "yVB6BKaFuOjIdUi93gO2ve_dcp0kCmRT",  # token_urlsafe(24): 24 random bytes, not 32
        "452606e2aad325b771a11599599eb610cc30149a9d7f9445ea102e88148e76",  # token_hex(31)
        " tFw4dwPbzKCga-tXeXpLwYRHM2LakmTbcteDGp7QFRs",  # " " + token_urlsafe(32)
    ],
)
def test_production_refuses_weak_secrets_and_says_how_to_make_one(secret: str) -> None:
    with pytest.raises(ConfigError, match="SPACES_SECRET_KEY") as refused:
        Settings.from_env({"SPACES_ENV": "production", "SPACES_SECRET_KEY": secret})
    assert "32 random bytes" in str(refused.value)
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in str(refused.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(32),
        lambda: base64.b64encode(os.urandom(32)).decode(),  # openssl rand -base64 32
        lambda: base64.b32encode(os.urandom(32)).decode(),
    ],
)
def test_production_accepts_32_random_bytes_in_any_usual_encoding(make: Callable[[], str]) -> None:
    for _ in range(200):
        secret = make()
        assert secret_weakness(secret) == "", secret
    assert Settings.from_env({"SPACES_ENV": "production", "SPACES_SECRET_KEY": make()}).env == "production"


def test_production_refuses_a_weak_operator_token() -> None:
    strong = {"SPACES_ENV": "production", "SPACES_SECRET_KEY": secrets.token_urlsafe(32)}
    assert Settings.from_env(strong).operator_token == ""  # none: /stats shows totals only
    with pytest.raises(ConfigError, match="SPACES_OPERATOR_TOKEN"):
        Settings.from_env({**strong, "SPACES_OPERATOR_TOKEN": "admin"})
    token = secrets.token_urlsafe(32)
    assert Settings.from_env({**strong, "SPACES_OPERATOR_TOKEN": token}).operator_token == token


@pytest.mark.parametrize(
    "env",
    [
        {"SPACES_API_HOST": "0.0.0.0"},
        {"SPACES_SFU_HOST": "::"},
        {"SPACES_API_HOST": "192.0.2.10", "SPACES_SECRET_KEY": DEV_SECRET + "\n"},
        {"SPACES_SFU_HOST": "spaces.example.org"},
    ],
)
def test_the_development_secret_is_refused_off_loopback(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="not loopback") as refused:
        Settings.from_env(env)
    assert "secrets.token_urlsafe(32)" in str(refused.value)
    # The same addresses with a secret of its own are fine, in development too.
    assert Settings.from_env({**env, "SPACES_SECRET_KEY": secrets.token_urlsafe(32)})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_the_development_secret_is_fine_on_loopback(host: str) -> None:
    assert Settings.from_env({"SPACES_API_HOST": host, "SPACES_SFU_HOST": host}).secret_key == DEV_SECRET


def test_the_apps_validate_settings_built_in_code(tmp_path: Path) -> None:
    """Settings made without ``from_env`` (tests, embedding) are checked by the app factories too."""
    from ingest.server import create_app as create_sfu
    from replay_api.app import create_app as create_api

    exposed = Settings(data_dir=tmp_path, api_host="0.0.0.0", sfu_host="0.0.0.0")
    for factory in (create_api, create_sfu):
        with pytest.raises(ConfigError, match="not loopback"):
            factory(exposed)


@pytest.mark.parametrize("env", [{"SPACES_API_PORT": "eighty"}, {"DATABASE_URL": "mysql://x"}])
def test_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def _readme_settings() -> dict[str, str]:
    """The README's configuration table: variable -> its default cell (``A / B`` rows split in two)."""
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n\n| variable |", 1)[1].split("\n\n", 1)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        names, defaults = cells[0].split(" / "), cells[1].split(" / ")
        for i, name in enumerate(names):
            rows[name.strip("`")] = defaults[i] if len(defaults) == len(names) else cells[1]
    return rows


#: Fields whose README default describes what an empty value derives.
_DERIVED = {"database_url", "sfu_node_id", "sfu_spool_dir"}


def test_the_readme_documents_every_setting_and_its_default() -> None:
    """Every field has a row under the variable that wins, every row a field, and plain defaults match."""
    documented = _readme_settings()
    fields = {name: variables(name) for name in Settings.__pydantic_fields__}  # type: ignore[attr-defined]
    named = {names[-1]: name for name, names in fields.items()}
    assert sorted(set(named) - set(documented)) == [], "settings missing from the README table"
    assert sorted(set(documented) - set(named)) == [], "README rows that are no setting"
    defaults = Settings()
    for variable, cell in documented.items():
        name = named[variable]
        if cell.startswith("`") and cell.endswith("`") and cell.count("`") == 2 and name not in _DERIVED:
            parsed = Settings.from_env({variable: cell.strip("`")})
            assert getattr(parsed, name) == getattr(defaults, name), f"{variable}: README says {cell}"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SPACES_API_PORT": "eighty"}, "SPACES_API_PORT"),
        ({"WHISPER_DEVICE": "cpu", "S3_REGION": "x", "SPACES_SFU_HEARTBEAT": "often"}, "SPACES_SFU_HEARTBEAT"),
        ({"SPACES_ENV": "staging"}, "SPACES_ENV"),
        ({"SPACES_SFU_LOOP": "trio"}, "SPACES_SFU_LOOP"),
        ({"SPACES_LIVE_CAPTIONS": "maybe"}, "SPACES_LIVE_CAPTIONS"),
        ({"SPACES_RETENTION_DAYS": "-1"}, "SPACES_RETENTION_DAYS"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=f"^{named}[: ]"):
        Settings.from_env(env)


def test_values_are_typed_when_read_and_aliases_keep_working() -> None:
    s = Settings.from_env(
        {
            "REDIS_URL": "redis://elsewhere:6379/1",
            "SPACES_SFU_EMPTY_TIMEOUT": "2.5",
            "SPACES_LIVE_CAPTIONS": "0",
            "SPACES_RETENTION_DAYS": "0.5",
            "WHISPER_COMPUTE_TYPE": "float32",
        }
    )
    assert (s.redis_url, s.sfu_empty_timeout, s.live_captions, s.retention_period()) == (
        "redis://elsewhere:6379/1",
        2.5,
        False,
        43200.0,
    )
    assert s.whisper_compute_type == "float32"
    # The prefixed name wins over the conventional one.
    assert Settings.from_env({"REDIS_URL": "redis://a", "SPACES_REDIS_URL": "redis://b"}).redis_url == "redis://b"


def test_live_captions_default_to_the_fast_model_in_english() -> None:
    """SPACES_LIVE_MODEL: latency first (tiny.en) where English is enough; the workers' model where it is not."""
    settings = Settings.from_env({"WHISPER_MODEL": "base"})
    assert settings.live_model_for("en") == "tiny.en"
    assert settings.live_model_for("auto") == "tiny.en"  # live captions of an ``auto`` space are English
    assert settings.live_model_for("fr") == "base"
    chosen = Settings.from_env({"WHISPER_MODEL": "base", "SPACES_LIVE_MODEL": "base"})
    assert chosen.live_model_for("en") == chosen.live_model_for("fr") == "base"


def test_live_final_passes_use_the_interim_model_unless_told() -> None:
    """SPACES_LIVE_FINAL_MODEL: empty, finals come from the interim passes' model; set, from the one named."""
    settings = Settings.from_env({"WHISPER_MODEL": "base"})
    assert settings.live_final_model_for("en") == "tiny.en"
    assert settings.live_final_model_for("fr") == "base"
    hybrid = Settings.from_env({"WHISPER_MODEL": "base", "SPACES_LIVE_FINAL_MODEL": "base"})
    assert (hybrid.live_model_for("en"), hybrid.live_final_model_for("en")) == ("tiny.en", "base")


def test_live_revise_is_seconds_of_speech_or_0_for_off() -> None:
    assert Settings.from_env({}).live_revise == 15.0
    assert Settings.from_env({"SPACES_LIVE_REVISE": "0"}).live_revise == 0.0
    with pytest.raises(ConfigError, match="SPACES_LIVE_REVISE"):
        Settings.from_env({"SPACES_LIVE_REVISE": "-1"}).validate()
