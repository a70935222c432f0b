"""Topic grants on the house follow MQTT_HOME_PREFIX: the default ``/home/#`` becomes ``{home}/#``.

``/home/#`` was literal, so with another prefix (empty gives lagarto's ``/<location>/…``) the household saw none of
its house. ``{home}`` is expanded with the prefix each time a grant is checked. A group holding both rows keeps one,
with the rights of both.
"""

from django.db import migrations, models

LITERAL = "/home/#"
FOLLOWS_PREFIX = "{home}/#"


def _convert(apps, old: str, new: str) -> None:
    TopicGrant = apps.get_model("messaging", "TopicGrant")
    for grant in TopicGrant.objects.filter(topic_filter=old):
        twin = TopicGrant.objects.filter(group_id=grant.group_id, topic_filter=new).first()
        if twin is None:
            grant.topic_filter = new
            grant.save(update_fields=["topic_filter"])
            continue
        twin.may_subscribe = twin.may_subscribe or grant.may_subscribe
        twin.may_publish = twin.may_publish or grant.may_publish
        twin.save(update_fields=["may_subscribe", "may_publish"])
        grant.delete()


def follow_prefix(apps, schema_editor):
    _convert(apps, LITERAL, FOLLOWS_PREFIX)


def back_to_literal(apps, schema_editor):
    _convert(apps, FOLLOWS_PREFIX, LITERAL)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0003_default_topic_grants")]

    operations = [
        migrations.AlterField(
            model_name="topicgrant",
            name="topic_filter",
            field=models.CharField(
                help_text=(
                    "An MQTT topic filter: '+' is one level, '#' the rest (e.g. {home}/#, /events/heating/#, #). "
                    "A leading {home} stands for the house prefix MQTT_HOME_PREFIX (/home by default)."
                ),
                max_length=1024,
            ),
        ),
        migrations.RunPython(follow_prefix, back_to_literal),
    ]
