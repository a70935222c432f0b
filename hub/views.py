from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from hub import health


@never_cache
def healthz(request):
    status, checks = health.run_checks()
    if not health.details_allowed(request):
        checks = health.without_details(checks)
    return JsonResponse({"status": status, "checks": checks}, status=503 if status == "down" else 200)
