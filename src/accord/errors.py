"""The exception tree of accord.

Every error a user can cause derives from :class:`AccordError` and carries what is needed to fix
the input::

    AccordError
    ├── DefinitionError        a process definition (or scenario) is invalid; holds every Problem
    ├── ExpressionError        a condition does not parse, or fails when evaluated
    ├── CaseError              an action on a case or task is refused; nothing was changed
    │   ├── NotFound           no such case, task or process
    │   ├── TaskStateError     the task is not in a state that allows the action
    │   ├── ConflictError      a repeated action with different data (e.g. a second completion)
    │   └── ContractViolation  handed-off data does not satisfy the step's data contract
    └── StoreError             the store cannot be opened or is not an accord store
"""

from __future__ import annotations

from dataclasses import dataclass


class AccordError(Exception):
    """Root of every error accord raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input file, located precisely enough to fix it."""

    file: str
    line: int
    col: int
    element: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.element}: {self.message}"


class DefinitionError(AccordError):
    """A definition has problems; ``problems`` lists every one of them, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col))
        super().__init__("\n".join(str(p) for p in self.problems))


class ExpressionError(AccordError):
    """A condition could not be parsed or evaluated."""

    def __init__(self, message: str, *, source: str = "", offset: int | None = None) -> None:
        self.source = source
        self.offset = offset
        super().__init__(message)


class CaseError(AccordError):
    """An action on a case or a task was refused and changed nothing."""


class NotFound(CaseError):
    """The case, task, step or process named does not exist."""


class TaskStateError(CaseError):
    """The task (or case) is not in a state that permits the action."""


class ConflictError(CaseError):
    """The action repeats an earlier one with different data."""


class ContractViolation(CaseError):
    """Data handed off by a step does not satisfy its data contract."""

    def __init__(self, step: str, errors: list[str]) -> None:
        self.step = step
        self.errors = errors
        super().__init__(f"data for step {step!r} violates its contract: " + "; ".join(errors))


class StoreError(AccordError):
    """The store could not be opened, migrated or used."""
