"""The settings' environment variables: their names, and reading them with pydantic-settings.

Every field of ``Settings`` is ``SPACES_{FIELD}``; a few are also known by
their conventional names (``DATABASE_URL``, ``REDIS_URL``, ...), the
``SPACES_`` one winning. A bad value is refused naming the variable it
came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AliasChoices, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

#: Variables known by their conventional names as well as ``SPACES_*``.
ALIASES = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "s3_bucket": "S3_BUCKET",
    "s3_endpoint_url": "S3_ENDPOINT_URL",
    "s3_region": "S3_REGION",
    "whisper_model": "WHISPER_MODEL",
    "whisper_device": "WHISPER_DEVICE",
    "whisper_compute_type": "WHISPER_COMPUTE_TYPE",
}


def variables(name: str) -> tuple[str, ...]:
    """The environment variables of field ``name``, the one that wins first."""
    alias = ALIASES.get(name)
    return (f"SPACES_{name.upper()}", alias) if alias else (f"SPACES_{name.upper()}",)


class _Environment(BaseSettings):
    """The environment as pydantic-settings reads it: one field per ``Settings`` field."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=False)


def read(fields: Mapping[str, FieldInfo], env: Mapping[str, str]) -> dict[str, Any]:
    """The values of ``fields`` set in ``env``, each under its variables (:func:`variables`).

    ``env``, not ``os.environ``: tests and ``spaces up`` pass their own.
    Raises pydantic's ``ValidationError`` for a bad value (:func:`describe` names its variable).
    """

    class Source(EnvSettingsSource):
        def _load_env_vars(self) -> Mapping[str, str | None]:
            return env

    class Environment(_Environment):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (Source(settings_cls),)

    typed: dict[str, Any] = {
        name: (
            Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation,
            Field(default=info.default, validation_alias=AliasChoices(*variables(name))),
        )
        for name, info in fields.items()
    }
    model: type[_Environment] = create_model("SettingsEnvironment", __base__=Environment, **typed)
    return model().model_dump(exclude_unset=True)


def describe(error: ValidationError, fields: Mapping[str, FieldInfo], env: Mapping[str, str]) -> str:
    """What was wrong, each error named by the variable it came from."""
    return "; ".join(_describe(e, fields, env) for e in error.errors())


def _describe(error: Any, fields: Mapping[str, FieldInfo], env: Mapping[str, str]) -> str:
    where = str(error["loc"][0]) if error["loc"] else "settings"
    if where in fields:  # a rule of Settings itself: say which variable was set
        where = next((v for v in variables(where) if v in env), variables(where)[0])
    if error["type"] == "positive_days":
        return f"{where} {error['msg']}"
    return f"{where}: {error['msg']}, got {error['input']!r}"
