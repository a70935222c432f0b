"""The panStamp radio network as the hub knows it: nodes, their readings, and the commands sent to them.

Signal history: each node keeps the RSSI/LQI of its last ``SIGNAL_HISTORY_LENGTH`` packets (every STATUS heard,
whether or not it carried an endpoint value) in a bounded list saved with the rest of a batch's node update; every
reading also keeps the signal of the packet that carried it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

UNASSIGNED_LOCATION = "unassigned"
#: Signal samples a node keeps (the room heater sends about 130 packets an hour).
SIGNAL_HISTORY_LENGTH = 100


class Node(models.Model):
    """One SWAP node heard on the air (or named by an admin before it was)."""

    #: The node's SWAP address (one byte, or two with extended addresses).
    address = models.PositiveIntegerField(unique=True)
    #: The address as the API and the page name it: lower-case hex, two digits (four when extended).
    key = models.CharField(max_length=8, unique=True, editable=False)
    manufacturer_id = models.PositiveBigIntegerField(null=True, blank=True)
    product_id = models.PositiveBigIntegerField(null=True, blank=True)
    #: The device definition it matched (e.g. "heater/Room heater"); empty while unknown.
    definition = models.CharField(max_length=200, blank=True)
    #: It sent a product code no device definition describes (recorded, not dropped).
    unknown_product = models.BooleanField(default=False)
    name = models.CharField(max_length=100, blank=True, help_text="What people call it, e.g. 'Living room heater'.")
    location = models.SlugField(
        max_length=64,
        blank=True,
        help_text="The room in MQTT topics (…/<location>/measure/…); 'unassigned' while empty.",
    )
    first_seen = models.DateTimeField(null=True, blank=True)
    last_heard = models.DateTimeField(null=True, blank=True, db_index=True)
    last_rssi = models.FloatField(null=True, blank=True, help_text="dBm")
    last_lqi = models.PositiveSmallIntegerField(null=True, blank=True)
    #: SWAP system state (register 3): 0 restart, 1 RX on, 2 RX off (asleep), 3 sync, 4 low battery, 5 upgrade.
    system_state = models.PositiveSmallIntegerField(null=True, blank=True)
    nonce = models.PositiveSmallIntegerField(null=True, blank=True)
    reachable = models.BooleanField(default=False)
    #: Last raw value of each register, hex by register id: what a command on one endpoint keeps of the others.
    registers = models.JSONField(default=dict, blank=True)
    #: ``[time (format_utc), RSSI dBm, LQI]`` of its last packets, oldest first, at most SIGNAL_HISTORY_LENGTH.
    signal_history = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["address"]

    def __str__(self) -> str:
        return self.name or f"node {self.key}"

    def save(self, *args, **kwargs):
        self.key = address_key(self.address)
        super().save(*args, **kwargs)

    @property
    def place(self) -> str:
        return self.location or UNASSIGNED_LOCATION

    def signal_heard(self, *, at: str, rssi: float, lqi: int) -> None:
        """Add a packet's signal to the history (in memory; the serial worker saves a batch's nodes at once)."""
        self.signal_history.append([at, rssi, lqi])
        if len(self.signal_history) > SIGNAL_HISTORY_LENGTH:
            del self.signal_history[:-SIGNAL_HISTORY_LENGTH]

    def recent_signal(self, count: int = SIGNAL_HISTORY_LENGTH) -> list[dict]:
        """The last ``count`` samples, newest first."""
        samples = self.signal_history[-count:] if count else []
        return [{"at": at, "rssi": rssi, "lqi": lqi} for at, rssi, lqi in reversed(samples)]


def address_key(address: int) -> str:
    return f"{address:02x}" if address <= 0xFF else f"{address:04x}"


class Reading(models.Model):
    """One endpoint value from one packet."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="readings")
    #: lagarto's endpoint id ``<address>.<register>.<index>``.
    endpoint_id = models.CharField(max_length=32)
    name = models.CharField(max_length=64)
    value = models.JSONField()
    unit = models.CharField(max_length=16, blank=True)
    recorded_at = models.DateTimeField()
    rssi = models.FloatField(null=True, blank=True, help_text="dBm")
    lqi = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(fields=["node", "-recorded_at"], name="reading_node_time"),
            models.Index(fields=["endpoint_id", "-recorded_at"], name="reading_endpoint_time"),
            models.Index(fields=["recorded_at"], name="reading_time"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.name} = {self.value}{self.unit}"


class CommandState(models.TextChoices):
    QUEUED = "queued", "queued"
    SENT = "sent", "sent, waiting for the node's STATUS"
    CONFIRMED = "confirmed", "confirmed"
    FAILED = "failed", "failed"


class Command(models.Model):
    """A register write for the serial worker to send and confirm by the node's STATUS."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="commands")
    endpoint = models.CharField(max_length=64)
    register_id = models.PositiveSmallIntegerField()
    #: The register's new bytes, hex.
    value = models.CharField(max_length=128)
    #: The endpoint value asked for, as given.
    requested_value = models.JSONField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Where it came from: "api", "page", "mqtt", "admin", …
    origin = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=16, choices=CommandState.choices, default=CommandState.QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    requested_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.node} {self.endpoint}={self.requested_value} ({self.state})"
