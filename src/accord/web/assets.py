"""Static files: the app's own CSS and script, and the browser libraries npm installed.

bpmn-js and htmx are pinned in package.json / package-lock.json and installed by ``make
install`` (``npm ci``) into the project's node_modules; they are served from there, under
/static/vendor/bpmn-js/ and /static/vendor/htmx/, and nothing else of node_modules is.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent / "static"
ROOT = Path(__file__).resolve().parents[3]
VENDOR = {"bpmn-js": Path("bpmn-js") / "dist", "htmx": Path("htmx.org") / "dist"}


def node_modules() -> Path | None:
    """Where npm installed the browser libraries (``ACCORD_NODE_MODULES`` overrides)."""
    env = os.environ.get("ACCORD_NODE_MODULES")
    for base in [Path(env)] if env else [ROOT / "node_modules", Path.cwd() / "node_modules"]:
        if (base / "bpmn-js").is_dir():
            return base
    return None


def _file(base: Path, path: str, cache: str) -> Response:
    root = base.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(target, headers={"Cache-Control": cache})


@router.get("/static/vendor/{lib}/{path:path}")
def vendor_file(lib: str, path: str) -> Response:
    """bpmn-js and htmx, as npm installed them (pinned in package-lock.json)."""
    base = node_modules()
    sub = VENDOR.get(lib)
    if base is None or sub is None:
        return Response("not installed: run `make install` (npm ci)", status_code=404,
                        media_type="text/plain")  # fmt: skip
    return _file(base / sub, path, "public, max-age=86400")


@router.get("/static/{path:path}")
def static_file(path: str) -> Response:
    """The app's own CSS and scripts."""
    return _file(STATIC, path, "public, max-age=300")
