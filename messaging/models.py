from django.db import models


class OutboxEvent(models.Model):
    """An event waiting to be published; written in the caller's transaction by ``messaging.publish``.

    The relay publishes rows in ``id`` order and deletes each only once the broker confirmed it.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    type = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    source = models.CharField(max_length=200)
    data = models.JSONField()
    topics = models.JSONField(default=list, blank=True)
    retain = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    #: How often the relay tried and failed to publish this row (kept for the admin and the health report).
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "outbox event"

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Event(models.Model):
    """An event as stored by the ``events.db`` consumer: once per id, however often it was delivered."""

    id = models.UUIDField(primary_key=True)
    type = models.CharField(max_length=200, db_index=True)
    occurred_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=200, db_index=True)
    data = models.JSONField()
    topics = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["type", "occurred_at"], name="event_type_time")]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class TopicGrant(models.Model):
    """What the members of a group may do on ``/ws/push``: subscribe to and/or publish on a topic filter.

    A subscription is allowed when a granted filter covers it entirely; a publish when a granted filter matches
    the topic and the user holds the permission its owning app requires there (heating's action topics need
    ``hub.send_commands``). A filter may open with ``{home}``, which stands for ``MQTT_HOME_PREFIX`` and is
    expanded when the grant is checked, so the default ``{home}/#`` follows the prefix. See ``messaging.push.grants``.
    """

    group = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="topic_grants")
    topic_filter = models.CharField(
        max_length=1024,
        help_text=(
            "An MQTT topic filter: '+' is one level, '#' the rest (e.g. {home}/#, /events/heating/#, #). "
            "A leading {home} stands for the house prefix MQTT_HOME_PREFIX (/home by default)."
        ),
    )
    may_subscribe = models.BooleanField(default=True)
    may_publish = models.BooleanField(default=False)

    class Meta:
        ordering = ["group__name", "topic_filter"]
        constraints = [models.UniqueConstraint(fields=["group", "topic_filter"], name="topic_grant_unique")]
        verbose_name = "topic grant"

    def __str__(self) -> str:
        rights = "/".join(r for r, on in (("subscribe", self.may_subscribe), ("publish", self.may_publish)) if on)
        return f"{self.group}: {self.topic_filter} ({rights or 'nothing'})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from messaging.topic_rules import validate_grant_filter
        from messaging.topics import InvalidTopicError

        try:
            validate_grant_filter(self.topic_filter)
        except InvalidTopicError as exc:
            raise ValidationError({"topic_filter": str(exc)}) from None
