"""assign(): local templates plus the hub's config, with desired states and skips."""

from __future__ import annotations

from typing import Any

import pytest

from glimpser.agent.assignment import assign, check_config
from glimpser.shared.errors import ProtocolError
from glimpser.shared.models import AgentConfig, Template


def _t(tid: str, **extra: Any) -> Template:
    return Template.model_validate({"id": tid, "name": tid, "source": {"kind": "test"}} | extra)


def test_local_and_hub_templates_with_desired_states() -> None:
    local = [_t("yard"), _t("porch", enabled=False), _t("gate")]
    config = AgentConfig(
        revision=3,
        templates=[
            _t("h1"),
            _t("h2"),
            _t("h3", enabled=False),
            _t("h4", agent_id="edge"),
            _t("elsewhere", agent_id="other"),
            _t("yard", fps=3),  # clashes with a local template
        ],
        desired={"h2": "stopped", "h3": "started"},
    )
    result = assign("edge", local, {"gate": "stopped"}, config)
    desired = {sid: w.desired for sid, w in result.wanted.items()}
    assert desired == {
        "yard": "started",
        "porch": "stopped",
        "gate": "stopped",  # a persisted stop command wins over the YAML
        "h1": "started",  # missing from desired: started
        "h2": "stopped",
        "h3": "stopped",  # enabled: false
        "h4": "started",
    }
    assert result.wanted["yard"].template.fps is None  # local wins
    assert set(result.skipped) == {"elsewhere", "yard"}
    assert "local wins" in result.skipped["yard"]


def test_no_config_means_local_only() -> None:
    result = assign("edge", [_t("yard")], {}, None)
    assert list(result.wanted) == ["yard"] and result.skipped == {}


def test_duplicate_ids_reject_the_config() -> None:
    check_config(AgentConfig(revision=1, templates=[_t("a"), _t("b")]))
    with pytest.raises(ProtocolError, match="duplicate template id 'a'"):
        check_config(AgentConfig(revision=1, templates=[_t("a"), _t("a", fps=2)]))
