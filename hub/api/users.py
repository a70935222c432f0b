"""``/v1/users/me``: who the caller is, as the hub's pages and scripts need it (scope ``users:read``)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from rest_framework import serializers
from rest_framework.generics import RetrieveAPIView

from hub.api.serializers import HubModelSerializer


class CurrentUserSerializer(HubModelSerializer):
    name = serializers.CharField(source="get_full_name", read_only=True)
    groups = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    permissions = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "name", "email", "groups", "permissions", "is_staff", "date_joined", "last_login"]
        read_only_fields = fields

    def get_permissions(self, user) -> list[str]:
        """Every permission the user holds, directly or through a group, as ``app_label.codename``."""
        return sorted(user.get_all_permissions())


class CurrentUserView(RetrieveAPIView):
    serializer_class = CurrentUserSerializer
    api_scope = "users"

    def get_object(self):
        return self.request.user


def users_matching(user, query: str, limit: int) -> list[dict]:
    """The search provider for ``/v1/search`` (staff only): accounts by user name, name or e-mail."""
    words = Q(username__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query)
    found = get_user_model().objects.filter(words | Q(email__icontains=query)).order_by("username")[:limit]
    return [
        {
            "id": str(account.pk),
            "title": account.get_full_name() or account.username,
            "url": reverse("admin:auth_user_change", args=[account.pk]),
        }
        for account in found
    ]
