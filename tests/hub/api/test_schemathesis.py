"""schemathesis against the hub's own /v1/schema: every operation, generated requests, no 500, answers as documented.

Requests go to the Django WSGI application in this process. Each operation is called with a token holding
exactly the scope its security requirement documents, of a superuser who may do anything, so the documented
scope must be enough to reach past the permission checks (and across operations every app's scopes are used).
The run is seeded (derandomized) and bounded: a few dozen examples per operation, no shrinking, well inside
three minutes on the 2-CPU machine.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import openapi as schemathesis_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from downloads.models import DownloadEvent
from downloads.services import customer_create, link_create
from heating.models import Node, Reading
from heating.services import alert_raise, room_create
from hub.api.scopes import RegisteredScopes
from messaging.models import Event

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

EXAMPLES_PER_OPERATION = 40
TIME_BUDGET_SECONDS = 180
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def token_for(bearer):
    """``token_for(scopes)`` → headers with a token holding just those scopes, for a superuser (who may do
    anything), so the token's scope is the only thing that could refuse a request."""
    user = User.objects.create_superuser("root", email="root@example.test", password="x")
    return lambda scopes: bearer(user, " ".join(sorted(scopes)))


def _documented_scopes(operation) -> set[str]:
    requirements = operation.definition.raw.get("security") or []
    return {scope for requirement in requirements for scope in requirement.get("oauth2", [])}


@pytest.fixture
def known_ids(downloads_root):
    """One of each thing the API serves, and its id as each detail path names it: generated ids rarely exist,
    so every detail operation also runs on one that does."""
    now = timezone.now()
    customer = customer_create(slug="acme", name="ACME")
    link = link_create(customer=customer, path="dir1/example1.txt", expires_at=now + timedelta(days=7))
    download = DownloadEvent.objects.create(link=link, customer="acme", status=200, outcome="served", at=now)
    node = Node.objects.create(address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater")
    reading = Reading.objects.create(
        node=node, endpoint_id="161.11.0", name="RoomTemp", value=20.5, unit="C", recorded_at=now
    )
    room = room_create(slug="hall", name="Hall")
    alert = alert_raise(room=room, kind="sensor_stale", message="No reading for an hour.", at=now)
    event = Event.objects.create(id=uuid.uuid4(), type="heating.reading", occurred_at=now, source="serial", data={})
    return {
        "/v1/alerts/{id}": {"id": str(alert.pk)},
        "/v1/customers/{slug}": {"slug": customer.slug},
        "/v1/download-events/{id}": {"id": str(download.pk)},
        "/v1/download-links/{id}": {"id": str(link.pk)},
        "/v1/events/{id}": {"id": str(event.pk)},
        "/v1/nodes/{key}": {"key": node.key},
        "/v1/readings/{id}": {"id": str(reading.pk)},
        "/v1/rooms/{id}": {"id": room.slug},
    }


# Generated bodies seldom name a file or an endpoint that exists: these do, so the writes' answers are checked too.
ACCEPTED_BODIES = {
    "POST /v1/download-links": {"customer": "acme", "path": "dir1/example1.txt", "max_downloads": 3},
    "POST /v1/nodes/{key}/commands": {"endpoint": "Heating", "value": 1},
    "PATCH /v1/rooms/{id}": {"target": 20.5},
    "POST /v1/rooms/{id}/boost": {"minutes": 30},
    "PATCH /v1/customers/{slug}": {"contact": "ops@acme.example"},
}


def _known_path_parameters(known_ids: dict, path: str) -> dict | None:
    for prefix, parameters in known_ids.items():
        if path == prefix or path.startswith(prefix + "/"):
            return parameters
    return None


def _operations(schema):
    return sorted((result.ok() for result in schema.get_all_operations()), key=lambda operation: operation.label)


def test_every_operation_answers_as_its_schema_says(
    token_for, known_ids, settings_override_allowed_hosts, connections_kept_open
):
    schema = schemathesis_openapi.from_wsgi("/v1/schema", get_wsgi_application())
    started = time.monotonic()
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    operations = _operations(schema)
    assert len(operations) > 30  # every app's API is in the schema

    every_scope = set(RegisteredScopes().get_all_scopes())
    used_scopes: set[str] = set()
    for operation in operations:
        # Each operation is called with a token holding just the scope its security requirement names: the
        # documented scope must be enough (a 403 insufficient-scope would be a disagreement too).
        scopes = _documented_scopes(operation) or every_scope
        used_scopes |= scopes
        headers = token_for(scopes)
        runs = [("positive", operation.as_strategy()), ("negative", operation.as_strategy(GenerationMode.NEGATIVE))]
        known = _known_path_parameters(known_ids, operation.path)
        if known is not None:
            runs.append(("positive, an existing id", operation.as_strategy(path_parameters=known)))
        body = ACCEPTED_BODIES.get(operation.label)
        if body is not None:
            runs.append(("a body it accepts", operation.as_strategy(path_parameters=known, body=body)))
        for mode, strategy in runs:

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case):
                # run() is called at once, in this iteration: it sees this operation's headers.
                response = case.call_and_validate(headers=headers, checks=CHECKS)  # noqa: B023
                statuses.setdefault(case.operation.label, set()).add(response.status_code)

            try:
                run()
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (GET /v1/presets takes no input): no negative case.
                assert mode == "negative", operation.label
            except (Exception, BaseExceptionGroup) as failure:  # every operation is run; all failures are reported
                failures[f"{operation.label} ({mode})"] = f"{type(failure).__name__}: {str(failure)[:1500]}"

    elapsed = time.monotonic() - started
    apps_scopes = {scope for scope in every_scope if scope.startswith(("heating:", "downloads:", "events:", "users:"))}
    assert apps_scopes - {"users:write"} <= used_scopes  # users:write guards no REST operation
    # Each token reached past every permission check: no operation was refused for want of a scope or a right.
    refused = {label: codes & {401, 403} for label, codes in statuses.items() if codes & {401, 403}}
    assert not refused
    assert {label for label, codes in statuses.items() if any(200 <= code < 300 for code in codes)}
    accepted = {label for label in ACCEPTED_BODIES if any(200 <= code < 300 for code in statuses.get(label, ()))}
    assert accepted == set(ACCEPTED_BODIES)  # each accepted body did reach the write
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
    assert elapsed < TIME_BUDGET_SECONDS


@pytest.fixture
def connections_kept_open():
    """As Django's test client does: the WSGI handler's request_finished would close the test's connection
    (on PostgreSQL, its transaction with it) after the first request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def settings_override_allowed_hosts(settings):
    # schemathesis' WSGI client sends Host: localhost.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
