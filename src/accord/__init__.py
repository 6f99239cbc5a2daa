"""accord: define a cross-team process once; run it central, choreographed or hybrid; measure it.

The curated surface for programs that embed accord::

    import accord

    definition = accord.load("examples/client-onboarding.yaml")
    engine = accord.open_engine("sqlite:///onboarding.db", [definition])
    case_id = engine.start_case("client-onboarding")
    task = engine.tasks(team="sales", status="claimed")[0]
    engine.complete(task.id, task.assignee, {"client": "Acme", "amount": 1200, "risk": "low"})
    for event in engine.events(case_id):
        print(event.type, event.step)
"""

from accord.central.engine import Engine, open_engine
from accord.clock import SystemClock, VirtualClock
from accord.errors import (
    AccordError,
    CaseError,
    ConflictError,
    ContractViolation,
    DefinitionError,
    ExpressionError,
    NotFound,
    Problem,
    StoreError,
    TaskStateError,
)
from accord.events import Event, EventType
from accord.handlers import HandlerContext, HandlerRegistry
from accord.kernel import CaseState, CaseStatus, TaskStatus
from accord.model import ProcessDefinition, load, loads

__version__ = "0.1.0"

__all__ = [
    "AccordError",
    "CaseError",
    "CaseState",
    "CaseStatus",
    "ConflictError",
    "ContractViolation",
    "DefinitionError",
    "Engine",
    "Event",
    "EventType",
    "ExpressionError",
    "HandlerContext",
    "HandlerRegistry",
    "NotFound",
    "Problem",
    "ProcessDefinition",
    "StoreError",
    "SystemClock",
    "TaskStateError",
    "TaskStatus",
    "VirtualClock",
    "__version__",
    "load",
    "loads",
    "open_engine",
]
