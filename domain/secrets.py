"""Resolving a SecretRef (environment variable or file) to its value."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from domain.config_model import SecretRef


class SecretUnavailable(Exception):
    pass


def read_secret(ref: SecretRef, environ: Mapping[str, str] = os.environ) -> str:
    if ref.env is not None:
        value = environ.get(ref.env)
        if value is None:
            raise SecretUnavailable(f"environment variable {ref.env} is not set")
        return value
    try:
        return Path(ref.file).read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError) as exc:
        raise SecretUnavailable(f"cannot read secret file {ref.file}: {exc}") from None
