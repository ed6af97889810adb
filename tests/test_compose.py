"""Schema and consistency checks for docker-compose.yml and the Dockerfile."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.validators
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "compose-spec.json"

BACKING_SERVICES = {"postgres", "redis", "minio"}
HUB_SERVICES = {"migrate", "api", "worker", "beat"}
NO_HEALTHCHECK = {"migrate", "beat"}
SUBCOMMANDS = {"init", "serve", "worker", "beat"}


def _normalise_uri(uri: str) -> str:
    """Compare meta-schema URIs ignoring scheme and a trailing empty fragment."""
    return re.sub(r"^https?://", "", uri).rstrip("#")


def _validator_class(schema: dict[str, Any]) -> type[Any]:
    """Pick the validator for the schema's own ``$schema`` draft (tolerating https / missing '#')."""
    cls = jsonschema.validators.validator_for(schema, default=None)
    if cls is not None:
        return cls
    wanted = _normalise_uri(schema["$schema"])
    for candidate in (
        jsonschema.Draft202012Validator,
        jsonschema.Draft201909Validator,
        jsonschema.Draft7Validator,
        jsonschema.Draft6Validator,
        jsonschema.Draft4Validator,
    ):
        meta_id = candidate.META_SCHEMA.get("$id", candidate.META_SCHEMA.get("id", ""))
        if _normalise_uri(meta_id) == wanted:
            return candidate
    raise AssertionError(f"no validator for $schema {schema['$schema']!r}")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Any:
    cls = _validator_class(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svc: dict[str, dict[str, Any]] = compose["services"]
    return svc


def test_schema_draft_is_draft7(schema: dict[str, Any]) -> None:
    assert _validator_class(schema) is jsonschema.Draft7Validator


def test_compose_validates_against_spec(validator: Any, compose: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    assert "version" not in compose
    assert {"services", "volumes", "secrets"} <= compose.keys()


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d["services"]["postgres"]["healthcheck"].__setitem__("interval", 5), id="interval-int"),
        pytest.param(lambda d: d.__setitem__("servics", d.pop("services")), id="typo-top-level-key"),
        pytest.param(lambda d: d["services"]["api"].__setitem__("ports", "8000:8000"), id="ports-not-list"),
    ],
)
def test_broken_compose_fails_validation(validator: Any, compose: dict[str, Any], mutate: Any) -> None:
    broken = copy.deepcopy(compose)
    mutate(broken)
    assert not validator.is_valid(broken)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == BACKING_SERVICES | HUB_SERVICES
    for name in BACKING_SERVICES:
        assert "image" in services[name] and "build" not in services[name], name
    for name in HUB_SERVICES:
        assert services[name].get("build") == ".", name


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in svc, name
        else:
            test = svc.get("healthcheck", {}).get("test")
            assert test and test[0] in {"CMD", "CMD-SHELL"}, name


def test_hub_services_wait_for_migrate(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker", "beat"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
    for name in BACKING_SERVICES:
        assert services["migrate"]["depends_on"][name]["condition"] == "service_healthy"
        assert services["api"]["depends_on"][name]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"


def test_api_environment_points_at_backing_services(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    env = services["api"]["environment"]
    assert env["HUB_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["HUB_STORAGE_URL"].startswith("s3://")
    assert env["HUB_BROKER_URL"].startswith("redis://")
    for name in HUB_SERVICES:
        svc = services[name]
        assert svc["environment"] == compose["x-hub-env"], name
        assert svc["secrets"] == ["hub_master_key"], name
        assert "hubkeys:/srv/hub/var" in svc["volumes"], name
    assert env["HUB_MASTER_KEY_FILE"] == "/run/secrets/hub_master_key"
    assert compose["secrets"]["hub_master_key"]["file"] == "./secrets/hub_master_key"


def test_build_service_commands(services: dict[str, dict[str, Any]]) -> None:
    built = {name: svc for name, svc in services.items() if "build" in svc}
    assert set(built) == HUB_SERVICES
    for name, svc in built.items():
        cmd = svc["command"]
        assert isinstance(cmd, list) and len(cmd) >= 2, name
        assert cmd[0] in {"licence-hub", "celery"}, name
        assert cmd[1] in SUBCOMMANDS, name


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, args) pairs with comments dropped and continuations joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out: list[tuple[str, str]] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def test_dockerfile_packages_and_non_root_user() -> None:
    instructions = _dockerfile_instructions()
    runs = " ".join(args for kw, args in instructions if kw == "RUN")
    installs = re.findall(r"apt-get install ([^&;|]*)", runs)
    packages = set(" ".join(installs).split())
    assert {"poppler-utils", "qpdf", "libnss3-tools"} <= packages
    assert "--no-install-recommends" in packages
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert froms and froms[0].startswith("python:3.11-slim-bookworm")
    users = [args for kw, args in instructions if kw == "USER"]
    assert users, "Dockerfile has no USER line"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
