"""``/v1/users/me``: who the caller is, as the hub's pages and scripts need it (scope ``users:read``)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
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
