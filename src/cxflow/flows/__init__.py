"""Task flows: definitions, compiled move rules, A/B variants and templates."""

from cxflow.flows.experiments import FlowExperiment, FlowVariant
from cxflow.flows.machine import CompiledFlow, compile_flow
from cxflow.flows.model import (
    MAX_STATUSES,
    Flow,
    Material,
    Status,
    StatusKind,
    TodoTemplate,
    Transition,
)
from cxflow.flows.templates import DEFAULT_TEMPLATES, default_flow

__all__ = [
    "DEFAULT_TEMPLATES",
    "MAX_STATUSES",
    "CompiledFlow",
    "Flow",
    "FlowExperiment",
    "FlowVariant",
    "Material",
    "Status",
    "StatusKind",
    "TodoTemplate",
    "Transition",
    "compile_flow",
    "default_flow",
]
