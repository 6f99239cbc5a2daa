"""Process definitions: types, the YAML loader and validation."""

from accord.model.loader import load, loads
from accord.model.types import Flow, Member, Mode, ProcessDefinition, Step, StepKind, Team

__all__ = [
    "Flow",
    "Member",
    "Mode",
    "ProcessDefinition",
    "Step",
    "StepKind",
    "Team",
    "load",
    "loads",
]
