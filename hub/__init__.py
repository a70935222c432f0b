"""The hub project: settings, wiring, and the pieces every app shares."""

from hub.celery import celery_app

__all__ = ("celery_app",)
