"""``accord bpmn-check DIR``: which BPMN models of a folder accord imports and runs, and why not.

For every ``.bpmn`` / ``.bpmn20.xml`` file (recursively) the check reads it safely, classifies
every element (:func:`accord.bpmn.elements.survey`), imports it, and if that works simulates a
few cases with the model's default scenario (equal branch probabilities where conditions read
data nobody provides, one person per team, default durations). A file is

- ``ran``: every simulated case completed, or stopped at a dead end the model itself draws (it
  waits for a message from another pool that no live step of the case can send any more; BPMN
  engines strand such a case too) while at least one case completed;
- ``imported``: imported, but the cases did not all complete (the reason names the step: a
  message the simulator does not send, a condition that needs data, ...);
- ``refused``: the import refused it; the reason is the first problem (file:line: id: what).

The simulation drives the same engine and simulator as ``accord run`` (:mod:`accord.sim`), on a
clock that stops the run after ``budget_s`` seconds of wall time, so that a model whose loop never
ends (possible in BPMN) cannot hold the check up. Nothing a file contains can crash the check:
an unexpected exception is reported as that file's result.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.bpmn.elements import IGNORED, REFUSED, SUPPORTED, Element, survey
from accord.bpmn.importer import import_document
from accord.bpmn.reader import is_bpmn_path, read_bpmn
from accord.clock import EPOCH, VirtualClock
from accord.errors import DefinitionError, Problem
from accord.events import Event, EventType
from accord.model.types import ProcessDefinition, StepKind

RAN = "ran"
IMPORTED = "imported"
REFUSED_FILE = "refused"


class _OutOfTime(Exception):
    pass


class _BudgetClock(VirtualClock):
    """Virtual time that refuses to move once the wall-clock budget is spent."""

    def __init__(self, start: float, budget_s: float) -> None:
        super().__init__(start)
        self.deadline = time.perf_counter() + budget_s

    def advance_to(self, t: float) -> None:
        if time.perf_counter() > self.deadline:
            raise _OutOfTime
        super().advance_to(t)


@dataclass
class FileResult:
    """What the check found for one file."""

    path: str
    status: str
    reason: str = ""
    elements: list[Element] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    cases: int = 0
    completed: int = 0


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """One element kind across the folder."""

    kind: str
    files: int
    supported: int
    refused: int
    ignored: int
    reason: str

    @property
    def status(self) -> str:
        """``supported``, ``refused``, ``ignored`` or ``partly`` (some of each)."""
        kinds = [
            s
            for s, n in (
                (SUPPORTED, self.supported),
                (REFUSED, self.refused),
                (IGNORED, self.ignored),
            )
            if n
        ]
        return kinds[0] if len(kinds) == 1 else "partly"


@dataclass
class CheckReport:
    """Every file's result, and the coverage by element kind."""

    root: str
    files: list[FileResult]

    def counts(self) -> Counter[str]:
        """How many files ran, were imported, were refused."""
        return Counter(f.status for f in self.files)

    def coverage(self) -> list[CoverageRow]:
        """Element kinds, most frequent first."""
        files: dict[str, set[str]] = {}
        n: dict[str, Counter[str]] = {}
        reason: dict[str, str] = {}
        for f in self.files:
            for e in f.elements:
                files.setdefault(e.kind, set()).add(f.path)
                n.setdefault(e.kind, Counter())[e.status] += 1
                if e.status != SUPPORTED and e.reason:
                    reason.setdefault(e.kind, _general(e.reason))
        rows = [
            CoverageRow(
                k,
                len(files[k]),
                c[SUPPORTED],
                c[REFUSED],
                c[IGNORED],
                reason.get(k, ""),
            )
            for k, c in n.items()
        ]
        return sorted(rows, key=lambda r: (-r.files, r.kind))

    def to_json(self) -> dict[str, Any]:
        """A plain summary (for ``--json`` and for tests)."""
        return {
            "root": self.root,
            "counts": dict(self.counts()),
            "files": [
                {
                    "path": f.path,
                    "status": f.status,
                    "reason": f.reason,
                    "cases": f.cases,
                    "completed": f.completed,
                    "problems": [str(p) for p in f.problems],
                }
                for f in self.files
            ],
            "coverage": [
                {
                    "kind": r.kind,
                    "status": r.status,
                    "files": r.files,
                    "supported": r.supported,
                    "refused": r.refused,
                    "ignored": r.ignored,
                    "reason": r.reason,
                }
                for r in self.coverage()
            ],
        }


def _general(reason: str) -> str:
    """The part of a refusal that holds for every element of its kind."""
    return reason.split(": ", 1)[-1] if ": " in reason else reason


def bpmn_files(root: str | Path) -> list[Path]:
    """The BPMN files under ``root`` (or ``root`` itself), sorted."""
    p = Path(root)
    if p.is_file():
        return [p]
    return sorted(f for f in p.rglob("*") if f.is_file() and is_bpmn_path(f))


def check(
    root: str | Path,
    *,
    cases: int = 3,
    seed: int = 0,
    budget_s: float = 10.0,
    progress: Any = None,
) -> CheckReport:
    """Check every BPMN file under ``root``. ``progress(done, total)`` is called per file."""
    files = bpmn_files(root)
    base = Path(root) if Path(root).is_dir() else Path(root).parent
    results: list[FileResult] = []
    for i, f in enumerate(files):
        results.append(check_file(f, cases=cases, seed=seed, budget_s=budget_s, base=base))
        if progress is not None:
            progress(i + 1, len(files))
    return CheckReport(str(root), results)


def check_file(
    path: Path, *, cases: int = 3, seed: int = 0, budget_s: float = 10.0, base: Path | None = None
) -> FileResult:
    """Read, survey, import and run one file."""
    rel = (
        str(path.relative_to(base)) if base is not None and path.is_relative_to(base) else str(path)
    )
    try:
        return _check_file(path, rel, cases, seed, budget_s)
    except Exception as exc:
        return FileResult(rel, REFUSED_FILE, f"internal error: {type(exc).__name__}: {exc}")


def _check_file(path: Path, rel: str, cases: int, seed: int, budget_s: float) -> FileResult:
    try:
        doc = read_bpmn(path)
    except DefinitionError as exc:
        return FileResult(rel, REFUSED_FILE, _first(exc.problems), problems=exc.problems)
    elements = survey(doc)
    try:
        imported = import_document(doc)
    except DefinitionError as exc:
        return FileResult(rel, REFUSED_FILE, _first(exc.problems), elements, exc.problems)
    completed, reason, dead_ends = run_cases(
        imported.definition, cases, seed=seed, budget_s=budget_s
    )
    status = RAN if completed == cases or (completed and dead_ends) else IMPORTED
    return FileResult(rel, status, reason, elements, [], cases, completed)


def _first(problems: list[Problem]) -> str:
    if not problems:
        return "refused"
    p = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"line {p.line}: {p.element}: {p.message}{more}"


def run_cases(
    d: ProcessDefinition, cases: int, *, seed: int = 0, budget_s: float = 10.0
) -> tuple[int, str, bool]:
    """Simulate ``cases`` cases of ``d`` with its scenario.

    Returns (completed, why not all, whether every unfinished case stands at a dead end of the
    model's own: a wait for a message from another pool that nothing live can send).
    """
    from accord.central.engine import Engine
    from accord.sim.runner import Simulation, staffed
    from accord.sim.scenario import load_scenario
    from accord.stores import open_store

    sc = load_scenario(d)
    run_d = staffed(d, sc)
    clock = _BudgetClock(EPOCH, budget_s)
    engine = Engine(open_store("memory://"), [run_d], clock=clock, auto_assign=sc.hub is None)
    stopped = False
    try:
        sim = Simulation(engine, run_d, sc, clock, cases=cases, seed=seed)
        try:
            sim.run()
        except _OutOfTime:
            stopped = True
        rows = engine.cases()
        completed = sum(1 for c in rows if c.status == "completed")
        if completed == cases:
            return completed, "", False
        unfinished = [c.id for c in rows if c.status != "completed"]
        if stopped:
            return (
                completed,
                f"{completed}/{cases} cases completed; stopped after {budget_s:g}s of wall time "
                "(a loop that never ends?)",
                False,
            )
        if not unfinished:
            return completed, f"{completed}/{cases} cases completed; no other case started", False
        events = list(engine.events())
        whys = [_why(d, events, engine, case_id) for case_id in unfinished]
        dead_ends = all(model_end for _, model_end in whys)
        return completed, f"{completed}/{cases} cases completed; {whys[0][0]}", dead_ends
    finally:
        engine.close()


def _why(
    d: ProcessDefinition, events: Iterable[Event], engine: Any, case_id: str
) -> tuple[str, bool]:
    """Why one case did not complete, in a line; and whether it is the model's own dead end."""
    mine = [e for e in events if e.case == case_id]
    cancelled = any(e.type is EventType.CASE_CANCELLED for e in mine)
    incidents = [
        e for e in mine if e.type is EventType.CASE_PAUSED and e.data.get("reason") == "incident"
    ]
    if incidents:
        data = incidents[-1].data
        how = "cancelled after incidents" if cancelled else "paused"
        return f"{case_id} {how}: at {data.get('step')}: {data.get('error')}", False
    open_tasks = [
        t
        for t in engine.tasks(status=None, case_id=case_id)
        if t.status not in ("completed", "cancelled")
    ]
    for t in open_tasks:
        step = d.steps.get(t.step)
        inside = step is not None and any(f.message for f in d.incoming.get(step.id, ()))
        if step is not None and step.kind is StepKind.MESSAGE and inside:
            live = [o for o in open_tasks if o is not t and not _waits_for_message(d, o.step)]
            if not live:
                return (
                    f"{case_id} waits at {t.step} for message {step.message!r} from another "
                    "pool, and no step of the case sends it any more (as the model says)",
                    True,
                )
        if step is not None and step.kind is StepKind.MESSAGE:
            return (
                f"{case_id} waits at {t.step} for message {step.message!r}, which the "
                "scenario's world outside did not send (see its `arrives`)",
                False,
            )
    if open_tasks:
        t = open_tasks[0]
        return f"{case_id} has task {t.step} {t.status}", False
    return f"{case_id} did not complete", False


def _waits_for_message(d: ProcessDefinition, step_id: str) -> bool:
    step = d.steps.get(step_id)
    return step is not None and step.kind is StepKind.MESSAGE


__all__ = [
    "IMPORTED",
    "RAN",
    "REFUSED_FILE",
    "CheckReport",
    "CoverageRow",
    "FileResult",
    "bpmn_files",
    "check",
    "check_file",
    "run_cases",
]
