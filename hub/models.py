from django.db import models


class Heartbeat(models.Model):
    """The last sign of life of a long-running worker, read by /healthz in any web process."""

    name = models.CharField(max_length=100, primary_key=True)
    beat_at = models.DateTimeField()
    #: How often the worker promises to beat; older than twice this counts as lost.
    interval_seconds = models.FloatField(default=30.0)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        permissions = [("send_commands", "Can switch hardware (send commands to nodes)")]

    def __str__(self) -> str:
        return self.name
