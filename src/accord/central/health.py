"""Health: a one-shot check of a store's replicas, and a tiny HTTP endpoint per replica.

``GET /health`` answers 200 with the replica's counters while it is making progress, 503 when it
is not (the database is unreachable, its turns keep failing, it is draining); load balancers and
orchestrators (Kubernetes liveness/readiness probes, systemd watchdogs) poll it.
``GET /replicas`` lists every replica the database knows, with the age of its last heartbeat.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from accord.stores.base import Store

if TYPE_CHECKING:
    from accord.central.replica import Replica

# A replica that has not sent a heartbeat for this long is presumed dead.
STALE_AFTER_S = 15.0


def replica_report(store: Store, stale_after: float = STALE_AFTER_S) -> dict[str, Any]:
    """What the database says about its replicas: each one's last heartbeat and whether it is
    live; raises StoreError when the database cannot be reached."""
    now = time.time()
    rows = []
    for r in store.replicas():
        age = now - r.seen_at
        rows.append(
            {
                "id": r.id,
                "role": r.role,
                "host": r.host,
                "pid": r.pid,
                "state": r.state,
                "seen_s_ago": round(age, 1),
                "live": age <= stale_after and r.state in ("running", "starting"),
                **r.info,
            }
        )
    live = [r for r in rows if r["live"]]
    return {
        "store": store.url,
        "schema_version": store.schema_version(),
        "cases": store.count_cases(),
        "replicas": rows,
        "live_engines": sum(1 for r in live if r["role"] == "engine"),
        "live_workers": sum(1 for r in live if r["role"] == "worker"),
    }


def serve_health(replica: Replica, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve ``/health`` and ``/replicas`` for ``replica`` on a daemon thread; return the server
    (``server.server_address`` tells the port when 0 was asked for)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("", "/health"):
                ok = replica.healthy()
                body: dict[str, Any] = {
                    "status": "ok" if ok else "unhealthy",
                    "id": replica.id,
                    "role": replica.config.role,
                    "state": replica.stats.state,
                    "store_ok": replica.stats.store_ok,
                    "last_turn_s_ago": round(time.time() - replica.stats.last_turn, 2),
                    **replica.info(),
                }
                self._send(200 if ok else 503, body)
            elif self.path.rstrip("/") == "/replicas":
                try:
                    self._send(200, replica_report(replica.engine.store))
                except Exception as exc:
                    self._send(503, {"status": "unhealthy", "error": str(exc)})
            else:
                self._send(404, {"error": f"no such path {self.path!r}"})

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # probes every few seconds would drown the replica's own log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="accord-health", daemon=True).start()
    return server
