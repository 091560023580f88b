"""Hub counters and their Prometheus text rendering."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class HubMetrics:
    """Monotonic counters the ingest and relay bump; gauges are read at render time."""

    received: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    frames_relayed: int = 0
    parts_sent: int = 0
    viewers_dropped: int = 0
    jobs_dropped: Counter[str] = field(default_factory=Counter)
    jobs_failed: Counter[str] = field(default_factory=Counter)
    captures_saved: int = 0
    template_clashes: int = 0

    def render(
        self,
        *,
        viewers: int,
        streams: int,
        agents_online: int,
        connected: bool,
        job_queue_depth: int = 0,
    ) -> str:
        """Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        _counter(
            lines,
            "glimpser_hub_messages_received_total",
            "MQTT messages accepted, by kind",
            "kind",
            self.received,
        )
        _counter(
            lines,
            "glimpser_hub_messages_rejected_total",
            "MQTT messages rejected, by reason",
            "reason",
            self.rejected,
        )
        _scalar(
            lines,
            "glimpser_hub_frames_relayed_total",
            "counter",
            "frames fanned out to at least one MJPEG viewer",
            self.frames_relayed,
        )
        _scalar(
            lines,
            "glimpser_hub_mjpeg_parts_sent_total",
            "counter",
            "MJPEG parts written to viewers",
            self.parts_sent,
        )
        _scalar(
            lines,
            "glimpser_hub_viewers_dropped_total",
            "counter",
            "MJPEG viewers dropped because their socket stalled",
            self.viewers_dropped,
        )
        _counter(
            lines,
            "glimpser_hub_jobs_dropped_total",
            "ingest writes dropped because the job queue was full, by kind",
            "kind",
            self.jobs_dropped,
        )
        _counter(
            lines,
            "glimpser_hub_jobs_failed_total",
            "ingest writes that failed, by kind",
            "kind",
            self.jobs_failed,
        )
        _scalar(
            lines,
            "glimpser_hub_captures_saved_total",
            "counter",
            "captures stored (duplicates not counted)",
            self.captures_saved,
        )
        _scalar(
            lines,
            "glimpser_hub_template_clashes_total",
            "counter",
            "agent-owned templates skipped because their id or name clashes",
            self.template_clashes,
        )
        _scalar(
            lines, "glimpser_hub_job_queue_depth", "gauge", "ingest writes queued", job_queue_depth
        )
        _scalar(lines, "glimpser_hub_viewers", "gauge", "MJPEG viewers connected", viewers)
        _scalar(lines, "glimpser_hub_streams", "gauge", "streams known from agents", streams)
        _scalar(lines, "glimpser_hub_agents_online", "gauge", "agents online", agents_online)
        _scalar(
            lines,
            "glimpser_hub_broker_connected",
            "gauge",
            "1 when connected to the broker",
            int(connected),
        )
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class AlertFigures:
    """The alert engine's counters and gauges, read at render time."""

    alerts: Counter[str]
    deliveries: Counter[str]
    dropped: int
    queue_depth: int
    listeners: int
    motion: dict[str, bool]


def render_alerts(figures: AlertFigures) -> str:
    """Prometheus lines of the alert engine, live listeners and motion flags."""
    lines: list[str] = []
    _counter(
        lines,
        "glimpser_hub_alerts_total",
        "alerts created, by state (new: notified; suppressed: snoozed or out of schedule)",
        "state",
        _with_zeros(figures.alerts, "new", "suppressed"),
    )
    _counter(
        lines,
        "glimpser_hub_alert_deliveries_total",
        "delivery attempts, by outcome (sent; retrying: failed, retry due; failed: given up)",
        "status",
        _with_zeros(figures.deliveries, "sent", "retrying", "failed"),
    )
    _scalar(
        lines,
        "glimpser_hub_alert_jobs_dropped_total",
        "counter",
        "events and state reports the alert engine dropped because its queue was full",
        figures.dropped,
    )
    _scalar(
        lines,
        "glimpser_hub_alert_queue_depth",
        "gauge",
        "alert jobs waiting",
        figures.queue_depth,
    )
    _scalar(lines, "glimpser_hub_live_listeners", "gauge", "SSE listeners", figures.listeners)
    lines += [
        "# HELP glimpser_hub_stream_motion 1 while the stream's agent reports motion",
        "# TYPE glimpser_hub_stream_motion gauge",
    ]
    for stream, on in sorted(figures.motion.items()):
        lines.append(f'glimpser_hub_stream_motion{{stream="{stream}"}} {int(on)}')
    return "\n".join(lines) + "\n"


def _with_zeros(values: Counter[str], *keys: str) -> Counter[str]:
    # Series that exist from the start let rate() and alerting rules see the first increment.
    out = Counter(dict.fromkeys(keys, 0))
    out.update(values)
    return out


def _counter(lines: list[str], name: str, help_: str, label: str, values: Counter[str]) -> None:
    lines += [f"# HELP {name} {help_}", f"# TYPE {name} counter"]
    for key, value in sorted(values.items()):
        lines.append(f'{name}{{{label}="{key}"}} {value}')


def _scalar(lines: list[str], name: str, kind: str, help_: str, value: int) -> None:
    lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {value}"]
