# The hub's one image: web, Celery worker and beat, relay, consumers and the init job all run it with
# different commands (docker-compose.yml). No secret is baked in: every setting comes from the
# environment at run time (.env), so the same image goes to every site.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUB_MODE=production \
    HUB_VAR_DIR=/var/lib/hub \
    DOWNLOADS_ROOT=/srv/hub/downloads

RUN groupadd --system --gid 10001 hub \
    && useradd --system --uid 10001 --gid hub --home-dir /app --shell /usr/sbin/nologin hub

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# Editable, so BASE_DIR stays /app and templates/, static/ are found beside the code.
RUN pip install --no-deps -e . \
    # Named volumes mounted here start as copies of these folders, so they come up owned by the hub user.
    && mkdir -p /app/staticfiles /var/lib/hub /srv/hub/downloads /srv/hub/edge \
    && chown hub:hub /app/staticfiles /var/lib/hub /srv/hub/downloads /srv/hub/edge

USER hub
EXPOSE 8000

# Each service in docker-compose.yml sets its own command and health check; this default serves the web.
# X-Forwarded-* are trusted only from the addresses in uvicorn's FORWARDED_ALLOW_IPS (default loopback):
# set it to your proxy's address, never "*", or clients choose the address sign-in throttling counts.
# --ws-max-size: a WebSocket message is read whole before the hub can refuse it (docs/security.md).
CMD ["uvicorn", "hub.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "on", "--proxy-headers", "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--ws-max-size", "1048576"]
