"""Built-in handlers for automated steps imported from BPMN.

A BPMN service, script, send or business-rule task names an implementation accord cannot run (a
Java class, a Groovy script, a DMN decision, an external-task topic). The importer gives such steps
``handler: accord.bpmn.handlers:noop`` so that `accord run` and the engine can run the model as
it is; the import notes list what each step was meant to run. Replace the handler in the YAML
(``accord import model.bpmn -o model.yaml``) with a function of your own to give the step its
behaviour.
"""

from __future__ import annotations

from typing import Any

from accord.handlers import HandlerContext


def noop(ctx: HandlerContext) -> dict[str, Any] | None:
    """Do nothing and produce no data: the step completes as soon as it runs."""
    return None
