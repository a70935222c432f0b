"""``/healthz``: the modem link as the serial worker last reported it (any web process reads the heartbeat row), and
device definitions that could not be read."""

from __future__ import annotations

from heating.selectors import definitions, link_state
from hub.health import CheckResult


def modem_link_check() -> CheckResult:
    state = link_state()
    if state["beat_at"] is None:
        return CheckResult(False, state["detail"])
    detail = f"{state['detail']}; {state['decode_errors']} decode errors"
    return CheckResult(state["up"], ("up: " if state["up"] else "down: ") + detail)


def device_definitions_check() -> CheckResult:
    library = definitions()
    if library.errors:
        return CheckResult(False, f"{len(library.errors)} skipped: " + "; ".join(library.errors))
    return CheckResult(True, f"{len(library)} device definitions")
