"""The panStamp radio network as the hub knows it: nodes, their readings, and the commands sent to them.

Signal history: each node keeps the RSSI/LQI of its last ``SIGNAL_HISTORY_LENGTH`` packets (every STATUS heard,
whether or not it carried an endpoint value) in a bounded list saved with the rest of a batch's node update; every
reading also keeps the signal of the packet that carried it.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
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


# --- the house's heating: rooms, their heaters and schedules, the thermostat's decisions and alerts ---------------

#: A room's id: also its slug in URLs and its level in MQTT topics.
ROOM_SLUG_PATTERN = r"^[a-z0-9_-]{1,64}$"
#: Ids that would collide with API paths, page paths or MQTT topic levels the hub already uses.
RESERVED_ROOM_SLUGS = frozenset({"count", "search", "schema", "docs", "unassigned", "events", "homeassistant", "hub"})


def validate_room_slug(value: str) -> None:
    if not re.fullmatch(ROOM_SLUG_PATTERN, value or ""):
        raise ValidationError(
            "A room id is 1 to 64 of a-z, 0-9, '_' and '-' (it is also the room's MQTT topic level).",
            code="invalid",
        )
    if value in RESERVED_ROOM_SLUGS:
        raise ValidationError(
            f"'{value}' is reserved; choose another id (not {', '.join(sorted(RESERVED_ROOM_SLUGS))}).",
            code="reserved",
        )


class Mode(models.TextChoices):
    OFF = "off", "off (frost protection only)"
    MANUAL = "manual", "manual target"
    SCHEDULE = "schedule", "weekly schedule"


class Preset(models.TextChoices):
    COMFORT = "comfort", "comfort"
    ECO = "eco", "eco"
    AWAY = "away", "away"
    FROST = "frost", "frost"


class House(models.Model):
    """The house-wide settings a household changes: preset temperatures, the away switch, the hub's id.

    One row (pk 1, made on first use by ``heating.selectors.house``). Rooms may override each preset.
    """

    comfort = models.FloatField(default=21.0, help_text="°C")
    eco = models.FloatField(default=18.0, help_text="°C")
    away_temperature = models.FloatField(default=16.0, help_text="°C while the house is away")
    frost = models.FloatField(default=7.0, help_text="°C; heaters come on below it whatever the mode (5 to 12)")
    maximum = models.FloatField(default=30.0, help_text="°C; heaters go off above it whatever the mode (25 to 35)")
    away = models.BooleanField(default=False, help_text="Everyone is out: every room holds the away temperature.")
    away_since = models.DateTimeField(null=True, blank=True)
    #: Home Assistant discovery's id when HUB_ID is not set: random, made once, kept.
    hub_id = models.CharField(max_length=32, blank=True)

    class Meta:
        verbose_name = "house"
        verbose_name_plural = "house"

    def __str__(self) -> str:
        return "house settings"


class Room(models.Model):
    """A room the thermostat keeps warm: one temperature source, its heaters, its mode and weekly schedule."""

    slug = models.CharField(
        max_length=64,
        unique=True,
        validators=[validate_room_slug],
        help_text="Its id: in URLs and MQTT topics (<prefix>/<id>/temperature). a-z, 0-9, '_' and '-'.",
    )
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the home page.")
    #: The endpoint that gives its temperature: a node heard by the radio and one of its endpoints' names.
    temperature_node = models.ForeignKey(
        Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="temperature_of"
    )
    temperature_endpoint = models.CharField(max_length=64, blank=True)
    # Per-room overrides of the house's presets (empty: the house's).
    comfort = models.FloatField(null=True, blank=True, help_text="°C; empty: the house's")
    eco = models.FloatField(null=True, blank=True, help_text="°C; empty: the house's")
    away_temperature = models.FloatField(null=True, blank=True, help_text="°C; empty: the house's")
    frost = models.FloatField(null=True, blank=True, help_text="°C (5 to 12); empty: the house's")
    maximum = models.FloatField(null=True, blank=True, help_text="°C (25 to 35); empty: the house's")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.SCHEDULE)
    #: The target in manual mode.
    manual_target = models.FloatField(null=True, blank=True)
    #: A change made while on schedule: holds until ``override_until`` (the next block by default).
    override_target = models.FloatField(null=True, blank=True)
    override_until = models.DateTimeField(null=True, blank=True)
    #: Boost: heat until then, then back to what was before.
    boost_until = models.DateTimeField(null=True, blank=True)
    #: Time-proportional control for a room whose heaters overshoot with plain hysteresis.
    proportional = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]
        permissions = [("control", "Can change rooms' targets, modes, boosts and schedules")]

    def __str__(self) -> str:
        return self.name


class RoomHeater(models.Model):
    """A relay endpoint that heats a room, with the heater's power (for the energy figures)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="heaters")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="heater_of")
    endpoint = models.CharField(max_length=64, default="Heating")
    power_w = models.PositiveIntegerField(default=1000, help_text="W")

    class Meta:
        ordering = ["room", "node__address"]
        constraints = [models.UniqueConstraint(fields=["node", "endpoint"], name="heater_endpoint_once")]

    def __str__(self) -> str:
        return f"{self.node} {self.endpoint} ({self.power_w} W)"


class ScheduleBlock(models.Model):
    """One block of a room's week, in the house's wall-clock time (HUB_TIME_ZONE)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="schedule_blocks")
    #: 0 Monday … 6 Sunday.
    weekday = models.PositiveSmallIntegerField()
    #: Minutes from midnight; ``end_minute`` 1440 is the day's end.
    start_minute = models.PositiveSmallIntegerField()
    end_minute = models.PositiveSmallIntegerField()
    preset = models.CharField(max_length=16, choices=Preset.choices, blank=True)
    temperature = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["room", "weekday", "start_minute"]

    def __str__(self) -> str:
        what = self.preset or f"{self.temperature} °C"
        return f"{self.room} day {self.weekday} {self.start_minute // 60:02d}:{self.start_minute % 60:02d} {what}"


class AlertKind(models.TextChoices):
    SENSOR_STALE = "sensor_stale", "no temperature"
    SENSOR_FROZEN = "sensor_frozen", "temperature not changing"
    OVER_MAXIMUM = "over_maximum", "above the maximum"
    FROST = "frost", "below frost temperature"
    HEATING_FAILURE = "heating_failure", "heating but not warming"
    RELAY_UNCONFIRMED = "relay_unconfirmed", "relay command not confirmed"
    RELAY_STUCK = "relay_stuck", "relay stuck"
    MANUAL_MODE_FAILED = "manual_mode_failed", "heater node not in hub control"


class Alert(models.Model):
    """Something a household should know about a room; open until the condition clears."""

    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    message = models.CharField(max_length=300)
    raised_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            # One open alert of a kind per room: raising it again while open changes nothing.
            models.UniqueConstraint(
                fields=["room", "kind"], condition=models.Q(cleared_at__isnull=True), name="one_open_alert_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.room}: {self.get_kind_display()}"


class Decision(models.Model):
    """A thermostat decision, recorded when its outcome or reason changes (and once an hour per room)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="decisions")
    at = models.DateTimeField()
    heat = models.BooleanField()
    reason = models.CharField(max_length=80)
    target = models.FloatField(null=True, blank=True)
    temperature = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["room", "-at"], name="decision_room_time")]

    def __str__(self) -> str:
        return f"{self.room} {self.reason}"
