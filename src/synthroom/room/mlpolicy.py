"""A collaboration's model policy: who provides models, who runs and receives inference, who
pays for it, and whether and how large a trained model may leave the room.

It is part of the collaboration (set when it is created, shown to every invited member before
it accepts), like the reference product's ``trainedModelExports`` (here ``allow_export``) with
its ``maxArtifactSize`` (``max_artifact_mib``) and its inference payer.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError


class ModelPolicy(BaseModel):
    """The collaboration's rules for models (every field has the strict default)."""

    model_config = ConfigDict(extra="forbid")

    allow_export: bool = Field(False, description="Result receivers may download trained models (model.skops).")
    max_artifact_mib: int = Field(10, ge=1, le=1024, description="Largest model file that may leave, MiB.")
    model_providers: list[str] | None = Field(
        None, description="Members who may run training scripts (null: every result receiver)."
    )
    inference_runners: list[str] = Field(
        default_factory=list, description="Members who may score their own tables with a trained model."
    )
    inference_receivers: list[str] = Field(default_factory=list, description="Members who receive predictions.")
    inference_payer: str | None = Field(None, description="Member charged for inference (null: the payer).")

    def names(self) -> set[str]:
        """Every member the policy names."""
        named = set(self.model_providers or []) | set(self.inference_runners) | set(self.inference_receivers)
        return named | ({self.inference_payer} if self.inference_payer else set())


def parse_policy(value: dict | None) -> ModelPolicy:
    """A policy from a request (None: the defaults); a bad field is one :class:`InputError`."""
    try:
        return ModelPolicy(**(value or {}))
    except (ValidationError, TypeError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": ["model_policy"], "msg": str(exc)}]
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"model_policy.{where}: {first['msg']}") from None


def policy_of(collab) -> ModelPolicy:
    """The stored policy of a collaboration row."""
    return ModelPolicy(**json.loads(collab.model_policy or "{}"))
