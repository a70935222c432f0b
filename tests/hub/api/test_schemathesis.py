"""schemathesis against the hub's own /v1/schema: every operation, generated requests, no 500, answers as documented.

Requests go to the Django WSGI application in this process, as a token holding every scope of a superuser who
may do anything, so each operation is reached past its permission checks. The run is seeded (derandomized)
and bounded: a few examples per operation, no shrinking, well inside three minutes on the 2-CPU machine.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
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

from downloads.services import customer_create
from hub.api.scopes import RegisteredScopes

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

EXAMPLES_PER_OPERATION = 40
TIME_BUDGET_SECONDS = 180
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def every_scope_headers(bearer) -> dict[str, str]:
    user = User.objects.create_superuser("root", email="root@example.test", password="x")
    scopes = " ".join(sorted(RegisteredScopes().get_all_scopes()))
    return bearer(user, scopes)


def _operations(schema):
    return sorted((result.ok() for result in schema.get_all_operations()), key=lambda operation: operation.label)


def test_every_operation_answers_as_its_schema_says(every_scope_headers, settings_override_allowed_hosts):
    customer_create(slug="acme", name="ACME")  # something for the ids to find
    schema = schemathesis_openapi.from_wsgi("/v1/schema", get_wsgi_application())
    started = time.monotonic()
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    operations = _operations(schema)
    assert len(operations) > 30  # every app's API is in the schema

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                response = case.call_and_validate(headers=every_scope_headers, checks=CHECKS)
                statuses.setdefault(case.operation.label, set()).add(response.status_code)

            try:
                run()
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (GET /v1/presets takes no input): no negative case.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, ExceptionGroup) as failure:  # every operation is run; all failures are reported
                failures[f"{operation.label} ({mode.value})"] = f"{type(failure).__name__}: {str(failure)[:1500]}"

    elapsed = time.monotonic() - started
    # The token reached past every permission check: no operation was refused for want of a scope or a right.
    refused = {label: codes & {401, 403} for label, codes in statuses.items() if codes & {401, 403}}
    assert not refused
    assert {label for label, codes in statuses.items() if any(200 <= code < 300 for code in codes)}
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
    assert elapsed < TIME_BUDGET_SECONDS


@pytest.fixture
def settings_override_allowed_hosts(settings):
    # schemathesis' WSGI client sends Host: localhost.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
