"""What a synthetic team member does with a task: shared by the virtual-time simulator and the
real-time member loop of `accord node --members`."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from accord.central.engine import Engine
from accord.errors import CaseError, ContractViolation
from accord.model.types import ProcessDefinition, StepKind
from accord.sim.scenario import Scenario


def synth(field_name: str, schema: dict[str, Any] | None, rng: random.Random) -> Any:
    """A plausible value for an output the scenario does not describe (from its contract)."""
    prop = ((schema or {}).get("properties") or {}).get(field_name) or {}
    if "enum" in prop:
        return rng.choice(prop["enum"])
    kind = prop.get("type")
    if kind in ("number", "integer"):
        low = prop.get("minimum", 0)
        return low + rng.randint(1, 1000)
    if kind == "boolean":
        return rng.random() < 0.5
    return f"{field_name}-{rng.randint(1000, 9999)}"


def contract_fields(schema: dict[str, Any] | None) -> list[str]:
    """The fields a contract describes."""
    props = (schema or {}).get("properties") or {}
    return [str(k) for k in props]


def decisions(d: ProcessDefinition, sc: Scenario, rng: random.Random) -> dict[str, list[str]]:
    """Scenario branch choices: one target for exclusive routing; for an inclusive gateway each
    target independently with its probability (at least one)."""
    out: dict[str, list[str]] = {}
    for gid, pairs in sc.branches.items():
        if d.steps[gid].kind is StepKind.INCLUSIVE:
            chosen = [t for t, p in pairs if rng.random() < min(p, 1.0)]
            out[gid] = chosen or [max(pairs, key=lambda x: x[1])[0]]
        else:
            out[gid] = [rng.choices([p[0] for p in pairs], [p[1] for p in pairs])[0]]
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a finished piece of work went: completed, corrected after a refusal, failed, gone."""

    completed: bool
    contract_violation: bool = False


def finish(
    engine: Engine,
    d: ProcessDefinition,
    sc: Scenario,
    *,
    task_id: str,
    step_id: str,
    member: str,
    rng: random.Random,
) -> Outcome:
    """Complete (or fail, at the scenario's rate, or with one of its BPMN error codes) a task
    as a member would, entering the data the scenario describes; a contract refusal is
    corrected once, from the contract."""
    step = d.steps[step_id]
    spec = sc.step(step_id)
    try:
        code = spec.error(rng)  # a BPMN error the person reports (FailTask with its code)
        if code is not None:
            engine.fail(task_id, member, f"simulated BPMN error {code}", False, code=code)
            return Outcome(False)
        if spec.fail_rate and rng.random() < spec.fail_rate:
            engine.fail(task_id, member, "simulated failure")
            return Outcome(False)
        data = {k: g.sample(rng) for k, g in spec.data.items()}
        for name in step.outputs:
            if name not in data:
                data[name] = synth(name, step.contract, rng)
        chosen = decisions(d, sc, rng)
        try:
            engine.complete(task_id, member, data, decisions=chosen)
            return Outcome(True)
        except ContractViolation as exc:
            fixed = {
                **data,
                **{k: synth(k, step.contract, rng) for k in contract_fields(step.contract)},
            }
            try:
                engine.complete(task_id, member, fixed, decisions=chosen)
                return Outcome(True, contract_violation=True)
            except CaseError:
                engine.fail(task_id, member, str(exc), False)
                return Outcome(False, contract_violation=True)
    except CaseError:
        return Outcome(False)  # the world moved on (task withdrawn, case paused): a person shrugs
