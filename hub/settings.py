"""The hub's one settings module, read from the environment.

Embedded defaults apply when a variable is absent (``make run`` needs none);
``HUB_MODE=production`` insists on the values a public deployment must set.
``.env.example`` lists every variable read here.
"""

from __future__ import annotations

import secrets
import warnings
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from hub.env import (
    Env,
    parse_bind,
    parse_email_url,
    parse_hub_id,
    parse_published_port,
    parse_time_zone,
    production_refusals,
    system_time_zone,
)

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()

HUB_MODE = env.choice("HUB_MODE", ("embedded", "production"), default="embedded")
EMBEDDED = HUB_MODE == "embedded"
HUB_BIND = env.str("HUB_BIND", "127.0.0.1:8000")
HUB_BIND_HOST, HUB_BIND_PORT = env.parsed("HUB_BIND", parse_bind, ("127.0.0.1", 8000), "expected host:port")
_bind_host_for_url = "127.0.0.1" if HUB_BIND_HOST in ("0.0.0.0", "::") else HUB_BIND_HOST
if ":" in _bind_host_for_url:  # an IPv6 address is written in brackets in a URL
    _bind_host_for_url = f"[{_bind_host_for_url}]"
HUB_PUBLIC_URL = env.str("HUB_PUBLIC_URL", f"http://{_bind_host_for_url}:{HUB_BIND_PORT}").rstrip("/")
if urlsplit(HUB_PUBLIC_URL).scheme not in ("http", "https"):
    raise ImproperlyConfigured(f"HUB_PUBLIC_URL={HUB_PUBLIC_URL!r} is not valid: expected an http(s) URL")
# Where the hub keeps what it makes at run time (SQLite file, generated key) in the embedded default.
HUB_VAR_DIR = Path(env.str("HUB_VAR_DIR", str(BASE_DIR / "var")))

# Off unless asked for, in both modes: Django's debug pages show the URL map, settings and source to anyone
# who mistypes an address, and `HUB_BIND=0.0.0.0` lets the whole house reach them.
DEBUG = env.bool("DEBUG", default=False)


def _embedded_secret_key() -> str:
    """A random key generated once and kept beside the database, never a fixed default."""
    path = HUB_VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    HUB_VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key


SECRET_KEY = env.str("SECRET_KEY")
# Old keys, newest first: what they signed (sessions, password-reset and download links) still verifies.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS")

if HUB_MODE == "production":
    # Without AMQP_URL, Celery tasks and events would sit in one process's memory:// broker and vanish.
    missing = [name for name in ("SECRET_KEY", "ALLOWED_HOSTS", "AMQP_URL") if not env.is_set(name)]
    if missing:
        raise ImproperlyConfigured(f"HUB_MODE=production needs {', '.join(missing)} to be set")
    if DEBUG:
        raise ImproperlyConfigured("HUB_MODE=production refuses DEBUG=true: it leaks settings and stack traces")
    refusals = production_refusals(
        secret_key=SECRET_KEY, allowed_hosts=ALLOWED_HOSTS, amqp_url=env.str("AMQP_URL", "memory://")
    )
    if refusals:
        raise ImproperlyConfigured("HUB_MODE=production refuses to start: " + "; ".join(refusals))
else:
    SECRET_KEY = SECRET_KEY or _embedded_secret_key()
    if not ALLOWED_HOSTS:
        # Listening on every interface means phones reach the box by whatever address it has.
        ALLOWED_HOSTS = (
            ["*"] if HUB_BIND_HOST in ("0.0.0.0", "::") else ["127.0.0.1", "localhost", "[::1]", _bind_host_for_url]
        )

INSTALLED_APPS = [
    "jazzmin",
    "hub.apps.HubAdminConfig",  # django.contrib.admin with the hub's admin site (hub/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "hub",
    "messaging",
    "downloads",
    "heating",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside CSRF and the views: it rewrites every /v1/ error as JSON and applies the POST method override.
    "hub.api.middleware.ApiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks, so it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hub.urls"
ASGI_APPLICATION = "hub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hub.pages.context_processors.navigation",
            ],
            # jazzmin's tags with the admin's search box scoped to the page's model (hub/admin_theme.py).
            "libraries": {"jazzmin": "hub.admin_theme"},
        },
    },
]
# W003 says a tag library name has two modules: "jazzmin" has, on purpose (above). Silenced so every manage.py run
# does not print it; tests/hub/test_admin_chrome.py fails if any other name is ever used twice.
SILENCED_SYSTEM_CHECKS = ["templates.W003"]

# --- Database -------------------------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", f"sqlite:///{HUB_VAR_DIR / 'hub.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0 if EMBEDDED else 60)}
except ValueError as exc:  # dj-database-url says which part it could not read
    raise ImproperlyConfigured(f"DATABASE_URL={DATABASE_URL!r} is not valid: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock up front so two
    # writers queue on the busy timeout instead of failing with "database is locked" mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env.int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A Bootstrap page answering 429 Too Many Requests (axes' AXES_HTTP_RESPONSE_CODE default) once locked out.
AXES_LOCKOUT_TEMPLATE = "pages/lockout.html"

# --- Internationalisation -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# The house's one zone: schedules, boosts and the admin use it (pages show other times in the viewer's zone).
# TIME_ZONE is its old name, still read; a container's own zone is UTC, so docker compose requires HUB_TIME_ZONE.
_OLD_TIME_ZONE = env.parsed("TIME_ZONE", parse_time_zone, None, "expected an IANA time zone such as Europe/Madrid")
if _OLD_TIME_ZONE is not None:
    warnings.warn(
        f"TIME_ZONE is deprecated: set HUB_TIME_ZONE={_OLD_TIME_ZONE} instead"
        + (" (HUB_TIME_ZONE is set and wins)" if env.is_set("HUB_TIME_ZONE") else ""),
        FutureWarning,  # shown by default, unlike DeprecationWarning: it is meant for the operator
        stacklevel=1,
    )
HUB_TIME_ZONE = env.parsed(
    "HUB_TIME_ZONE",
    parse_time_zone,
    _OLD_TIME_ZONE or system_time_zone(),
    "expected an IANA time zone such as Europe/Madrid",
)
TIME_ZONE = HUB_TIME_ZONE
USE_I18N = True
USE_TZ = True

# --- Admin theme (django-jazzmin) ------------------------------------------------------------------------
# Menu grouping (Hub, the apps, Messaging, OAuth, Auth) is the admin site's: hub/admin_site.py.
JAZZMIN_SETTINGS = {
    "site_title": "Hub admin",
    "site_header": "Hub",
    "site_brand": "Hub",
    "site_logo": "hub/favicon.svg",
    "site_logo_classes": "",
    "site_icon": "hub/favicon.svg",
    "welcome_sign": "Sign in to administer the hub",
    "copyright": "Hub",
    # No fixed search model: each page's search box searches that page's model (hub/admin_theme.py).
    "search_model": None,
    # The admin's own index is its "Dashboard"; this is the way back to the hub's pages.
    "topmenu_links": [{"name": "Back to the hub", "url": "dashboard"}],
    "usermenu_links": [{"name": "Back to the hub", "url": "dashboard", "icon": "fas fa-home"}],
    # A home hub often has no internet: nothing from fonts.googleapis.com, the system font stack instead.
    "use_google_fonts_cdn": False,
    "show_ui_builder": False,
    "icons": {
        "hub": "fas fa-server",
        "hub.heartbeat": "fas fa-heartbeat",
        "messaging": "fas fa-exchange-alt",
        "messaging.outboxevent": "fas fa-inbox",
        "messaging.event": "fas fa-stream",
        "messaging.topicgrant": "fas fa-user-shield",
        "downloads": "fas fa-file-download",
        "downloads.customer": "fas fa-address-book",
        "downloads.downloadlink": "fas fa-link",
        "downloads.counteddownload": "fas fa-list-ol",
        "downloads.downloadevent": "fas fa-history",
        "downloads.linksend": "fas fa-paper-plane",
        "downloads.accesslogposition": "fas fa-bookmark",
        "heating": "fas fa-fire",
        "heating.house": "fas fa-home",
        "heating.room": "fas fa-door-open",
        "heating.roomheater": "fas fa-fire-alt",
        "heating.scheduleblock": "fas fa-calendar-alt",
        "heating.node": "fas fa-broadcast-tower",
        "heating.reading": "fas fa-thermometer-half",
        "heating.command": "fas fa-terminal",
        "heating.alert": "fas fa-exclamation-triangle",
        "heating.decision": "fas fa-balance-scale",
        "oauth2_provider": "fas fa-key",
        "oauth2_provider.application": "fas fa-th-large",
        "oauth2_provider.accesstoken": "fas fa-ticket-alt",
        "oauth2_provider.refreshtoken": "fas fa-redo",
        "oauth2_provider.grant": "fas fa-handshake",
        "oauth2_provider.idtoken": "fas fa-id-card",
        "auth": "fas fa-users-cog",
        "auth.user": "fas fa-user",
        "auth.group": "fas fa-users",
        "axes": "fas fa-shield-alt",
        "axes.accessattempt": "fas fa-user-lock",
        "axes.accessfailurelog": "fas fa-user-times",
        "axes.accesslog": "fas fa-sign-in-alt",
    },
    "changeform_format": "horizontal_tabs",
    "related_modal_active": False,
}
# Jazzmin's own Bootstrap (no Bootswatch theme: some of those @import Google fonts).
JAZZMIN_UI_TWEAKS = {"theme": "default", "default_theme_mode": "light"}

# --- Static files ---------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if EMBEDDED
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# The embedded default serves straight from the app folders; no collectstatic step on a fresh machine.
WHITENOISE_USE_FINDERS = EMBEDDED
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security (production) ------------------------------------------------------------------------------
if HUB_MODE == "production":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- REST API (/v1/, hub/api/) ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    # JSON only: any other Accept is a 406, any other body a 415 (docs/api-rules.md §2).
    "DEFAULT_RENDERER_CLASSES": ["hub.api.renderers.HubJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "hub.api.renderers.SuffixFirstNegotiation",
    "DEFAULT_PARSER_CLASSES": ["hub.api.parsers.HubJSONParser"],
    # Bearer first: its challenge makes a missing credential a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "oauth2_provider.contrib.rest_framework.OAuth2Authentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["hub.api.permissions.ScopedPermission"],
    "DEFAULT_PAGINATION_CLASS": "hub.api.pagination.HubPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "hub.api.filters.TimeRangeFilter",
        "hub.api.filters.ExactFieldFilter",
        "hub.api.filters.HubSearchFilter",  # ?q= over the view's search_fields (DRF's, its length bounded)
    ],
    "SEARCH_PARAM": "q",
    "EXCEPTION_HANDLER": "hub.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "hub.api.schema.HubAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
OAUTH2_PROVIDER = {
    # `<app>:read` / `<app>:write` and the umbrellas read / write: each app registers its pair when it loads.
    "SCOPES_BACKEND_CLASS": "hub.api.scopes.RegisteredScopes",
    # The toolkit's validator, also recording when a token was last used (shown on each user's Connected apps).
    "OAUTH2_VALIDATOR_CLASS": "hub.api.oauth.HubOAuth2Validator",
    # A client that asks for no scope gets read access only, never everything.
    "DEFAULT_SCOPES": ["read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 30 * 24 * 3600,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # Scripts act as a user through the device authorization grant (RFC 8628): the script shows a code, the
    # user approves it on this page after signing in (throttled by axes); the script never holds a password.
    "OAUTH_DEVICE_VERIFICATION_URI": f"{HUB_PUBLIC_URL}/o/device/",
    "OAUTH_DEVICE_VERIFICATION_URI_COMPLETE": f"{HUB_PUBLIC_URL}/o/device/?user_code={{user_code}}",
    # RFC 9700 (OAuth 2.0 Security BCP) now rather than at django-oauth-toolkit 4.0: no password or implicit
    # grant, no "plain" PKCE, no token in a query string, tokens hashed at rest, refresh-token replay detection.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hub API",
    "DESCRIPTION": "The hub's REST API. Errors: /v1/docs/errors. Tokens: the device flow at /o/device-authorization/ "
    "then /o/token/ (docs/api.md in the hub's source).",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/v1/",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["hub.api.schema.drop_format_suffix_endpoints"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hub.api.schema.add_error_responses",
        "hub.api.schema.bound_query_parameters",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from drf-spectacular-sidecar's static files: a home hub often has no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "OAUTH2_FLOWS": ["authorizationCode"],
    "OAUTH2_AUTHORIZATION_URL": "/o/authorize/",
    "OAUTH2_TOKEN_URL": "/o/token/",
    "OAUTH2_REFRESH_URL": "/o/token/",
    # No OAUTH2_SCOPES: the document lists what the scopes backend (OAUTH2_PROVIDER) knows.
}

# --- Channels -------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # socket_timeout None: the layer blocks on BZPOPMIN and must not time out (redis-py 8's default is 5 s).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}], "capacity": 1000},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Live push (/ws/push) bounds, so one user cannot grow a web process without limit (docs/security.md).
# Bytes of frames waiting for one socket before it is closed with 4408 (a reader that cannot keep up).
PUSH_MAX_QUEUED_BYTES = env.int("PUSH_MAX_QUEUED_BYTES", 4 * 1024 * 1024, minimum=64 * 1024)
# What one socket's subscriptions may hold: filters and ids in bytes, plus 512 bytes per filter level.
PUSH_MAX_SUBSCRIPTION_BYTES = env.int("PUSH_MAX_SUBSCRIPTION_BYTES", 1024 * 1024, minimum=4096)
PUSH_MAX_SUBSCRIPTIONS = env.int("PUSH_MAX_SUBSCRIPTIONS", 256, minimum=1)
# Open sockets per user in one web process; one more is closed with 4429.
PUSH_MAX_SOCKETS_PER_USER = env.int("PUSH_MAX_SOCKETS_PER_USER", 20, minimum=1)
# Bytes all retained values may hold (every topic, every user): a browser's retained publish beyond is refused.
PUSH_MAX_RETAINED_BYTES = env.int("PUSH_MAX_RETAINED_BYTES", 64 * 1024 * 1024, minimum=1024 * 1024)

# --- Message bus and Celery -----------------------------------------------------------------------------
AMQP_URL = env.str("AMQP_URL", "memory://")
MQTT_URL = env.str("MQTT_URL")
# Plain MQTT published on the LAN (deploy/mqtt-lan-plain.yml) for devices that cannot do TLS; compose reads it,
# the hub only reports it in /healthz. Unset: plain MQTT stays inside the compose network, the LAN gets TLS.
MQTT_LAN_PLAIN_PORT = env.parsed(
    "MQTT_LAN_PLAIN_PORT", parse_published_port, "", "expected a host port such as 1883, or address:port"
)
# Set but empty is meaningful here: it gives lagarto's exact topic shape.
MQTT_HOME_PREFIX = env.str_or_empty("MQTT_HOME_PREFIX", "/home").rstrip("/")
# This hub's id in Home Assistant's discovery topics and entity ids (<HUB_ID>_<room>); unset: a random id made
# once and kept in the database (heating.selectors.house).
HUB_ID = env.parsed("HUB_ID", parse_hub_id, "", "expected 1 to 32 of a-z, 0-9, '_' and '-'")
# What the MQTT bridge forwards from the broker to browser subscriptions, and its own queue on the event bus
# (bound to EVENTS_EXCHANGE, declared by the bridge only, so no queue fills up where no bridge runs).
MQTT_BRIDGE_FILTERS = env.list("MQTT_BRIDGE_FILTERS", ["#"])
MQTT_BRIDGE_QUEUE = env.str("MQTT_BRIDGE_QUEUE", "events.mqtt")
# MQTT 3.1.1 only (the broker clears RETAIN on what it forwards live): seconds between the bridge's fresh
# subscriptions that hand it the retained values again, so browsers subscribing later get values retained since.
MQTT_RETAINED_REFRESH = env.float("MQTT_RETAINED_REFRESH", 60.0, minimum=1.0)
CELERY_BROKER_URL = AMQP_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_LOG_COLOR = False
# A task's print() becomes an INFO record of logger celery.redirected, so it reaches syslog too.
CELERY_WORKER_REDIRECT_STDOUTS = True
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Apps add their periodic tasks here (hub/celery.py); the embedded default runs them in-process.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
# Events older than EVENTS_RETENTION_DAYS leave the event log; hourly keeps each run's deletions small.
CELERY_BEAT_SCHEDULE["messaging.prune_events"] = {"task": "messaging.prune_events", "schedule": 3600.0}
# Expired OAuth tokens and grants go (django-oauth-toolkit's cleartokens), once an hour.
CELERY_BEAT_SCHEDULE["hub.clear_expired_tokens"] = {"task": "hub.clear_expired_tokens", "schedule": 3600.0}
# Readings older than READINGS_RETENTION_DAYS go; hourly keeps each run's deletions small.
CELERY_BEAT_SCHEDULE["heating.readings_prune"] = {"task": "heating.tasks.readings_prune", "schedule": 3600.0}

# --- panStamp radio -------------------------------------------------------------------------------------
SERIAL_PORT = env.str("SERIAL_PORT")
SWAP_CHANNEL = env.int("SWAP_CHANNEL", 0, minimum=0, maximum=255)
SWAP_SYNC_WORD = env.hex("SWAP_SYNC_WORD", "B547", digits=4)
SWAP_ADDRESS = env.hex("SWAP_ADDRESS", "01", digits=2)
# The operator's panStamp device definitions (panStamp's devices-folder layout), merged over the shipped ones.
SWAP_DEVICES_DIR = env.str("SWAP_DEVICES_DIR")

# --- The thermostat (heating/thermostat_runner.py ThermostatTimings; docs/thermostat.md) ------------------
# Seconds between the serial worker's decision passes over every room (also after each batch of readings).
HEATING_THERMOSTAT_INTERVAL = env.float("HEATING_THERMOSTAT_INTERVAL", 30.0, minimum=1, maximum=3600)
# Seconds between QUERYs of each room's temperature (the firmware volunteers it only every ~16 minutes).
HEATING_TEMPERATURE_QUERY_INTERVAL = env.float("HEATING_TEMPERATURE_QUERY_INTERVAL", 120.0, minimum=5, maximum=3600)
# A room with no temperature for this long: heaters off and an alert.
HEATING_SENSOR_STALE_SECONDS = env.float("HEATING_SENSOR_STALE_SECONDS", 2100.0, minimum=60)
# A relay state older than this is not trusted: the relay is asked (QUERY) before it is switched.
HEATING_RELAY_STATE_MAX_AGE = env.float("HEATING_RELAY_STATE_MAX_AGE", 90.0, minimum=5)
HEATING_MIN_ON_SECONDS = env.float("HEATING_MIN_ON_SECONDS", 180.0, minimum=0, maximum=3600)
HEATING_MIN_OFF_SECONDS = env.float("HEATING_MIN_OFF_SECONDS", 180.0, minimum=0, maximum=3600)
HEATING_COLD_TOLERANCE = env.float("HEATING_COLD_TOLERANCE", 0.3, minimum=0, maximum=5)
HEATING_HOT_TOLERANCE = env.float("HEATING_HOT_TOLERANCE", 0.3, minimum=0, maximum=5)
HEATING_SENSOR_FROZEN_SECONDS = env.float("HEATING_SENSOR_FROZEN_SECONDS", 3 * 3600.0, minimum=60)
HEATING_FAILURE_SECONDS = env.float("HEATING_FAILURE_SECONDS", 3600.0, minimum=60)
HEATING_FAILURE_RISE = env.float("HEATING_FAILURE_RISE", 0.5, minimum=0, maximum=10)

# --- Signed downloads -----------------------------------------------------------------------------------
DOWNLOADS_ROOT = Path(env.str("DOWNLOADS_ROOT", str(HUB_VAR_DIR / "downloads")))
DOWNLOADS_PREFIX = "/" + env.str("DOWNLOADS_PREFIX", "/dl/").strip("/") + "/"
DOWNLOADS_HOST = env.str("DOWNLOADS_HOST")
# `kid2:base64secret,kid1:oldsecret`: the first signs new links, the others still verify theirs. Kept as text:
# the downloads app makes the key ring (downloads/keys.py) and stops start-up if it is malformed. Unset → keys
# derived from SECRET_KEY (signs) and each of SECRET_KEY_FALLBACKS (still verify).
DOWNLOADS_KEYS = env.str("DOWNLOADS_KEYS")
DOWNLOADS_LEGACY_SECRET = env.str("DOWNLOADS_LEGACY_SECRET")
# The zone the old tool's server wrote expiry times in: it stays the old TIME_ZONE (else UTC) and never follows
# HUB_TIME_ZONE, or setting the house's zone would move the expiry of every legacy link already handed out.
DOWNLOADS_LEGACY_TZ = ZoneInfo(
    env.parsed("DOWNLOADS_LEGACY_TZ", parse_time_zone, _OLD_TIME_ZONE or "UTC", "expected an IANA zone")
)
DOWNLOADS_DEFAULT_EXPIRY_DAYS = env.int("DOWNLOADS_DEFAULT_EXPIRY_DAYS", 7, minimum=1)
# How long a web process may reuse a link's record: a revocation made elsewhere reaches it within this. 0: never.
DOWNLOADS_LINK_CACHE_SECONDS = env.int("DOWNLOADS_LINK_CACHE_SECONDS", 1, minimum=0, maximum=60)
DOWNLOADS_ACCEL_LOCATION = env.str("DOWNLOADS_ACCEL_LOCATION")
# Served downloads are journaled here before their bytes go out, so a killed process loses no audit row; empty: off.
DOWNLOADS_AUDIT_JOURNAL = env.str_or_empty("DOWNLOADS_AUDIT_JOURNAL", str(HUB_VAR_DIR / "audit-journal"))
# Seconds after its last request in which a capped download may be resumed by a Range that skips byte 0 (same
# address and User-Agent, at most twice the file's size in all) without taking another unit of the cap.
DOWNLOADS_RESUME_WINDOW = env.int("DOWNLOADS_RESUME_WINDOW", 3600, minimum=0)
# Folder nginx reads the hub's edge markers from (one per link it may serve by itself: docs/downloads.md); empty: off.
DOWNLOADS_EDGE_DIR = env.str("DOWNLOADS_EDGE_DIR")
# nginx's JSON access log of the downloads it served at the edge, read into the audit by `manage.py read_edge_log`
# (docs/downloads.md "Edge audit"); empty: nothing reads it.
DOWNLOADS_EDGE_LOG = env.str("DOWNLOADS_EDGE_LOG")
# The largest file the admin accepts as an upload, in bytes (1 GiB). deploy/nginx.conf's client_max_body_size
# for the admin is the same figure (1024m; tests/downloads/test_admin_uploads.py holds them together).
DOWNLOADS_UPLOAD_MAX = env.int("DOWNLOADS_UPLOAD_MAX", 1024 * 1024 * 1024, minimum=1)

# --- E-mail ('Send link' in the downloads admin) -------------------------------------------------------
# smtp+tls://user:password@mail.example.org:587 (hub/env.py: parse_email_url). Unset: the embedded default prints
# mails on the console; production sends none (the admin says EMAIL_URL is missing) rather than pretend to.
EMAIL_URL = env.str("EMAIL_URL", "console://" if EMBEDDED else "")
_EMAIL = env.parsed(
    "EMAIL_URL",
    parse_email_url,
    parse_email_url("console://" if EMBEDDED else "dummy://"),
    "expected e.g. smtp+tls://host:587",
)
EMAIL_BACKEND = _EMAIL["EMAIL_BACKEND"]
EMAIL_HOST = _EMAIL.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _EMAIL.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _EMAIL.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _EMAIL.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _EMAIL.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _EMAIL.get("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env.str("EMAIL_FROM", "hub@localhost")
# A mail server that does not answer must not hold the admin's page for minutes.
EMAIL_TIMEOUT = 20
# The contact line on the page a customer's browser gets for a refused link (an e-mail address becomes a mailto
# link); empty: the page has none.
DOWNLOADS_CONTACT = env.str("DOWNLOADS_CONTACT")

# --- Retention ------------------------------------------------------------------------------------------
EVENTS_RETENTION_DAYS = env.int("EVENTS_RETENTION_DAYS", 90, minimum=1)
READINGS_RETENTION_DAYS = env.int("READINGS_RETENTION_DAYS", 365, minimum=1)

# --- Logging --------------------------------------------------------------------------------------------
SYSLOG_ADDRESS = env.str("SYSLOG_ADDRESS")
SYSLOG_FACILITY = env.str("SYSLOG_FACILITY", "user")
LOG_LEVEL = env.choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), default="INFO")

from hub.logging import build_logging_config  # noqa: E402  (needs the values above)

LOGGING = build_logging_config(level=LOG_LEVEL, syslog_address=SYSLOG_ADDRESS, syslog_facility=SYSLOG_FACILITY)

# --- Event bus names (messaging/topology.py declares them) ----------------------------------------------
# The fanout exchange keeps the name existing kombu producer scripts use, so they reach the hub unchanged.
EVENTS_EXCHANGE = env.str("EVENTS_EXCHANGE", "ce")
EVENTS_TOPIC_EXCHANGE = env.str("EVENTS_TOPIC_EXCHANGE", "events.topic")
EVENTS_DB_QUEUE = env.str("EVENTS_DB_QUEUE", "events.db")
EVENTS_NOTIFY_QUEUE = env.str("EVENTS_NOTIFY_QUEUE", "events.notify")
EVENTS_DEAD_LETTER_EXCHANGE = env.str("EVENTS_DEAD_LETTER_EXCHANGE", "events.dlx")
EVENTS_DEAD_LETTER_QUEUE = env.str("EVENTS_DEAD_LETTER_QUEUE", "events.dead")
