"""Alert figures in the Prometheus text, and the alerts block of the hub settings."""

from __future__ import annotations

from collections import Counter

import pytest

from glimpser.hub.config import HubSettings, load_hub_settings
from glimpser.hub.metrics import AlertFigures, render_alerts
from glimpser.shared.errors import ConfigError


def test_alert_series_exist_from_the_start() -> None:
    text = render_alerts(AlertFigures(Counter(), Counter({"sent": 3}), 0, 0, 1, {"a1.cam": True}))
    for line in (
        'glimpser_hub_alerts_total{state="new"} 0',
        'glimpser_hub_alerts_total{state="suppressed"} 0',
        'glimpser_hub_alert_deliveries_total{status="sent"} 3',
        'glimpser_hub_alert_deliveries_total{status="failed"} 0',
        'glimpser_hub_alert_deliveries_total{status="retrying"} 0',
        "glimpser_hub_alert_jobs_dropped_total 0",
        "glimpser_hub_live_listeners 1",
        'glimpser_hub_stream_motion{stream="a1.cam"} 1',
    ):
        assert line in text.splitlines()


def test_alert_settings_are_part_of_the_hub_settings() -> None:
    assert HubSettings().alerts.offline_delay == 60
    settings = load_hub_settings(None, {"alerts": {"offline_delay": 5}})
    assert settings.alerts.offline_delay == 5
    with pytest.raises(ConfigError, match="offline_dleay"):
        load_hub_settings(None, {"alerts": {"offline_dleay": 5}})
