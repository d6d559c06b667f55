"""Reading a plant file into a PlantConfig, with errors that name the file and key path."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import ValidationError

from domain.config_model import PlantConfig

CONFIG_ENV_VAR = "STACKLIGHT_CONFIG"
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "demo_plant.yaml"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A plant file that cannot be used; str() is the message for the operator."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"configuration error in {path}:\n{lines}")


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """--config wins, then $STACKLIGHT_CONFIG, then the demo plant shipped in the repo."""
    return Path(cli_path or environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def expand_env_references(node: Any, environ: Mapping[str, str], key_path: str = "") -> Any:
    """Replace ${NAME} and ${NAME:-default} in strings; a missing NAME without default is an error."""
    if isinstance(node, dict):
        return {k: expand_env_references(v, environ, f"{key_path}.{k}" if key_path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_env_references(v, environ, f"{key_path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise KeyError(f"{key_path}: environment variable {name} is not set and has no default")

    expanded = _ENV_REFERENCE.sub(substitute, node)
    # A whole-string reference may stand for a number ("port: ${PORT:-1883}").
    return yaml.safe_load(expanded) if _ENV_REFERENCE.fullmatch(node) else expanded


def format_validation_error(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        location = ""
        for part in item["loc"]:
            if isinstance(part, int):
                location += f"[{part}]"
            elif part in ("opcua", "mqtt", "sparkplug"):  # discriminator tag, not a key the user wrote
                continue
            else:
                location += f".{part}" if location else str(part)
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{location or '(top level)'}: {message}")
    return problems


def parse_config(text: str, path: Path, environ: Mapping[str, str] = os.environ) -> PlantConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(path, ["the file must be a mapping with 'sources' and 'tags'"])
    try:
        raw = expand_env_references(raw, environ)
    except KeyError as exc:
        raise ConfigError(path, [exc.args[0]]) from None
    try:
        return PlantConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(path, format_validation_error(exc)) from None


def load_config(path: Path, environ: Mapping[str, str] = os.environ) -> PlantConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror}"]) from None
    return parse_config(text, path, environ)
