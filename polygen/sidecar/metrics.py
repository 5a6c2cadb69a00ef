"""``GET /metrics``: the sidecar in Prometheus' text format (prometheus-client).

Counters since the sidecar started: uploads stored (by kind), log lines stored, requests refused
(by reason, ``refusal_reason``), sightings not kept (a bound of ``polygen.sightings.Coalescer``),
unattended rebuilds that failed or were refused. Gauges read when asked: the phones seen (from
the log database, split by whether the served build has them), the generation served and its
phones, and the time of the last good build. Each app has its own registry, so several apps in
one process (the tests) do not share counts.

It asks for the same HTTP basic auth as the phones' files when the build has
``site.provisioning_auth`` (``polygen.sidecar.guard``): the phones seen are no one else's business.
"""

from __future__ import annotations

from aiohttp import web

from polygen.sidecar import keys

__all__ = ["Metrics", "handle_metrics", "refusal_reason"]

# status -> reason; 404 of an upload and 429 are told apart by what the handler noted
_REASONS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 408: "body_timeout", 413: "too_large", 503: "unavailable"}


def refusal_reason(status: int, notes: dict, method: str) -> str | None:
    """Why a request was refused (a label of ``polygen_refusals_total``), None if it was not."""
    if status < 400:
        return None
    if status == 429:
        return f"too_many_{notes.get('limited', 'requests')}"
    if status == 404 and method == "PUT" and "kind" in notes:
        return "unknown_phone"
    if status == 503 and method == "PUT" and "kind" in notes:
        return "db_unavailable"
    return _REASONS.get(status, f"http_{status}")


class Metrics:
    """The sidecar's metrics (module docstring); counters are thread-safe (the watcher's thread
    counts failed rebuilds)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Info, disable_created_metrics

        disable_created_metrics()  # no *_created series: the counters' start is the process's
        self.registry = r = CollectorRegistry()
        self.uploads = Counter("polygen_uploads", "Log uploads stored, by kind of log.", ["kind"], registry=r)
        self.lines = Counter("polygen_log_lines_stored", "Log lines stored.", registry=r)
        self.refusals = Counter("polygen_refusals", "Requests refused, by reason.", ["reason"], registry=r)
        self.dropped = Counter("polygen_sightings_dropped",
                               "Sightings not kept: too many waiting, or too many unknown MACs at once.",
                               registry=r)
        self.build_failures = Counter("polygen_build_failures",
                                      "Unattended rebuilds (--watch) that failed or were refused.", registry=r)
        self.phones_seen = Gauge("polygen_phones_seen",
                                 "Phones seen within the log retention, by whether the served build has them.",
                                 ["inventory"], registry=r)
        self.phones_served = Gauge("polygen_phones_served", "Phones in the served generation.", registry=r)
        self.generation = Info("polygen_generation", "The generation served.", registry=r)
        self.last_good_build = Gauge("polygen_last_good_build_timestamp_seconds",
                                     "When the served generation was built, or last confirmed by a rebuild.",
                                     registry=r)
        self.rebuilt_at: float | None = None  # the last successful unattended rebuild

    def count_request(self, method: str, status: int, notes: dict) -> None:
        reason = refusal_reason(status, notes, method)
        if reason is not None:
            self.refusals.labels(reason).inc()
        elif method == "PUT" and "upload_id" in notes:
            self.uploads.labels(notes.get("kind", "")).inc()
            self.lines.inc(int(notes.get("lines", 0)))


async def handle_metrics(request: web.Request) -> web.Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from polygen.sidecar.guard import require_auth
    from polygen.sidecar.handlers import _generation

    app = request.app
    gen = _generation(request)
    require_auth(request, gen)
    metrics = app[keys.METRICS]
    tree = app[keys.TREE]
    served = tree.manifest(gen).macs
    seen = await app[keys.STORE].seen_macs()
    if seen is not None:
        seen |= app[keys.OBSERVER].pending_macs()
        known = len(seen & served)
        metrics.phones_seen.labels("known").set(known)
        metrics.phones_seen.labels("unknown").set(len(seen) - known)
    metrics.phones_served.set(len(served))
    metrics.generation.info({"generation": gen.name})
    try:
        built = (gen / ".polygen-manifest.json").stat().st_mtime
    except OSError:
        built = gen.stat().st_mtime
    metrics.last_good_build.set(max(built, metrics.rebuilt_at or 0.0))
    metrics.dropped.inc(app[keys.OBSERVER].take_dropped())
    return web.Response(body=generate_latest(metrics.registry), headers={
        "Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
