"""A node's signal history stays bounded, oldest samples dropped first."""

from __future__ import annotations

from heating.models import SIGNAL_HISTORY_LENGTH, Node


def test_signal_history_keeps_the_last_samples_only():
    node = Node(address=0xA1)
    for number in range(SIGNAL_HISTORY_LENGTH + 50):
        node.signal_heard(at=f"t{number}", rssi=-float(number), lqi=number % 128)
    assert len(node.signal_history) == SIGNAL_HISTORY_LENGTH
    assert node.signal_history[0] == ["t50", -50.0, 50]
    newest = SIGNAL_HISTORY_LENGTH + 49
    assert node.recent_signal(2) == [
        {"at": f"t{newest}", "rssi": -float(newest), "lqi": newest % 128},
        {"at": f"t{newest - 1}", "rssi": -float(newest - 1), "lqi": (newest - 1) % 128},
    ]
