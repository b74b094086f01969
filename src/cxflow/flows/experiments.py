"""Flow A/B tests: one task type mapped to several flows with weights."""

from __future__ import annotations

import hashlib

import attrs

from cxflow import _validate as v
from cxflow.errors import ValidationError

__all__ = ["FlowExperiment", "FlowVariant"]


@attrs.frozen(kw_only=True)
class FlowVariant:
    """One arm of an experiment: a flow id and its integer weight (>= 1)."""

    flow_id: str = attrs.field(validator=v.identifier)
    weight: int = attrs.field(default=1, validator=v.positive_int)


@attrs.frozen(kw_only=True)
class FlowExperiment:
    """Maps ``task_type`` to two or more flows; ``choose`` picks one per task id.

    The choice is deterministic (a SHA-256 of the task type and task id), stable
    across processes and Python versions, and proportional to the weights.
    """

    task_type: str = attrs.field(validator=v.identifier)
    variants: tuple[FlowVariant, ...] = attrs.field(
        converter=v.to_tuple, validator=v.tuple_of(FlowVariant)
    )

    def __attrs_post_init__(self) -> None:
        if len(self.variants) < 2:
            raise ValidationError("variants", "an experiment needs at least two flows")
        ids = [variant.flow_id for variant in self.variants]
        if len(set(ids)) != len(ids):
            raise ValidationError("variants", "each flow may appear only once")

    def choose(self, task_id: str) -> str:
        """Return the flow id the task with ``task_id`` is assigned to."""
        digest = hashlib.sha256(f"{self.task_type}\x00{task_id}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") % sum(v.weight for v in self.variants)
        for variant in self.variants:
            if point < variant.weight:
                return variant.flow_id
            point -= variant.weight
        raise AssertionError("unreachable")  # pragma: no cover
