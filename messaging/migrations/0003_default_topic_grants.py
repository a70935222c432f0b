"""The default grants: household members watch the house and the heating's events; staff may do everything."""

from django.db import migrations

DEFAULT_GRANTS = {
    # group: [(filter, may_subscribe, may_publish)]
    "household": [("/home/#", True, False), ("/events/heating/#", True, False)],
    "staff": [("#", True, True)],
}


def create_default_grants(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    TopicGrant = apps.get_model("messaging", "TopicGrant")
    for group_name, grants in DEFAULT_GRANTS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for topic_filter, may_subscribe, may_publish in grants:
            TopicGrant.objects.get_or_create(
                group=group,
                topic_filter=topic_filter,
                defaults={"may_subscribe": may_subscribe, "may_publish": may_publish},
            )


def remove_default_grants(apps, schema_editor):
    TopicGrant = apps.get_model("messaging", "TopicGrant")
    for group_name, grants in DEFAULT_GRANTS.items():
        TopicGrant.objects.filter(
            group__name=group_name, topic_filter__in=[topic_filter for topic_filter, _s, _p in grants]
        ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0002_topic_grant"),
        ("hub", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_default_grants, remove_default_grants)]
