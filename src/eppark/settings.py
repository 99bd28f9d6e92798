"""Django settings, all from the environment (contracts.md "Operations").

``DATABASE_URL`` (default: a SQLite file under ``./var/``), ``REDIS_URL``,
``MQTT_URL``, ``EPPARK_MEDIA_DIR``, ``EPPARK_SECRET_KEY``, ``EPPARK_DEBUG``,
``EPPARK_ALLOWED_HOSTS`` (comma-separated), and the HTTPS settings of
docs/deploy.md (``EPPARK_SSL_REDIRECT``, ``EPPARK_TRUST_X_FORWARDED_PROTO``,
``EPPARK_SECURE_COOKIES``, ``EPPARK_HSTS_*``).

The secret key: ``EPPARK_SECRET_KEY``; else ``eppark demo`` (``EPPARK_DEMO=1``)
generates a random one once into ``VAR_DIR/secret-key`` (0600) and reuses it,
and any other command uses that file when it works on the demo's database
(``DATABASE_URL`` unset); else the test suite (pytest, ``EPPARK_TESTING``) uses a
fixed key. Anything else is a configuration error: no public key is ever used
outside the demo and the tests.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from eppark import demo_secret

VAR_DIR = Path(os.environ.get("EPPARK_VAR_DIR", Path.cwd() / "var")).resolve()
DEMO = os.environ.get("EPPARK_DEMO") == "1"
# Off in the demo too: unknown URLs get the friendly 404 page, never Django's debug page.
DEBUG = os.environ.get("EPPARK_DEBUG", "0") == "1"
TESTING = bool(os.environ.get("PYTEST_VERSION") or os.environ.get("EPPARK_TESTING"))


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    return default if value == "" else value == "1"


_TEST_KEY = "eppark-test-suite-only-not-secret"
SECRET_KEY = os.environ.get("EPPARK_SECRET_KEY", "")
# Where the key came from: "environment", "demo" (the var dir's random key) or "testing".
EPPARK_SECRET_KEY_SOURCE = "environment"
if not SECRET_KEY:
    if DEMO:
        SECRET_KEY, EPPARK_SECRET_KEY_SOURCE = demo_secret.ensure_secret(VAR_DIR), "demo"
    elif TESTING:
        SECRET_KEY, EPPARK_SECRET_KEY_SOURCE = _TEST_KEY, "testing"
    elif not os.environ.get("DATABASE_URL") and (_demo_key := demo_secret.read_secret(VAR_DIR)):
        SECRET_KEY, EPPARK_SECRET_KEY_SOURCE = _demo_key, "demo"
    else:
        raise ImproperlyConfigured(
            "EPPARK_SECRET_KEY is not set: set it to a long random value (python3 -c "
            "'import secrets; print(secrets.token_urlsafe(50))'), or run `eppark demo` "
            f"once to use the demo's database and key (looked for {VAR_DIR / 'secret-key'})"
        )
# Production: a key of its own and no debug pages (the demo and the tests run on plain HTTP).
PRODUCTION = EPPARK_SECRET_KEY_SOURCE == "environment" and not (DEMO or DEBUG or TESTING)

# Where drivers' phones reach this server (the robots' QR codes encode URLs under it).
EPPARK_PUBLIC_URL = os.environ.get("EPPARK_PUBLIC_URL", "http://127.0.0.1:8000")
_public = urlsplit(EPPARK_PUBLIC_URL)

ALLOWED_HOSTS = [h for h in os.environ.get("EPPARK_ALLOWED_HOSTS", "").split(",") if h] or (
    ["*"] if DEBUG or DEMO else sorted({"localhost", "127.0.0.1", _public.hostname or "localhost"})
)
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"] if _public.netloc else []

# HTTPS (docs/deploy.md). Behind a TLS proxy, trust its X-Forwarded-Proto only when
# told to (the proxy must set it, overwriting whatever the client sent).
if _flag("EPPARK_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _flag("EPPARK_SSL_REDIRECT", PRODUCTION)
# Plate cameras push over plain HTTP and do not follow redirects.
SECURE_REDIRECT_EXEMPT = [r"^devices/", r"^cti/"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _flag("EPPARK_SECURE_COOKIES", PRODUCTION)
SECURE_HSTS_SECONDS = int(os.environ.get("EPPARK_HSTS_SECONDS") or (31536000 if PRODUCTION else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("EPPARK_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = _flag("EPPARK_HSTS_PRELOAD", True)

INSTALLED_APPS = [
    "eppark.accounts.apps.BackOfficeAdminConfig",  # django.contrib.admin, lot-scoped
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "simple_history",
    "eppark.accounts",
    "eppark.lots",
    "eppark.devices",
    "eppark.passes",
    "eppark.stays",
    "eppark.orders",
    "eppark.payments",
    "eppark.console",
    "eppark.calls",
    "eppark.provisioning",
    "eppark.operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "eppark.middleware.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "eppark.urls"
WSGI_APPLICATION = "eppark.wsgi.application"
ASGI_APPLICATION = "eppark.asgi.application"

# The agent desk's pushes (Django Channels): Redis when REDIS_URL is set (several
# processes), else in memory (one process: the demo).
REDIS_URL = os.environ.get("REDIS_URL", "")
_REDIS_LAYER = {
    "BACKEND": "channels_redis.core.RedisChannelLayer",
    "CONFIG": {"hosts": [REDIS_URL]},
}
CHANNEL_LAYERS = {
    "default": _REDIS_LAYER if REDIS_URL else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Under ASGI every request runs in a thread of its own, so persistent per-thread
# connections would pile up: PostgreSQL uses psycopg's pool instead (Django 5.1+).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'eppark.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # After a database outage: a pooled connection is checked before it is handed out (a
    # dead one is replaced), nobody waits for one longer than a camera waits for its
    # reply, and the pool reconnects on a steady beat (psycopg_pool's own backoff doubles
    # to 8 s and more: pushes failed for 15 s after PostgreSQL was back).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": int(os.environ.get("EPPARK_DB_POOL_SIZE", "20")),
        "timeout": 3,
        "reconnect_timeout": 60,
    }
    from eppark.pool_retry import retry_steadily

    retry_steadily()  # back within a second of the database's return, not after 1+2+4+… s
    # Server-side binding lets psycopg prepare the statements a connection runs often
    # (the gate loop's handful): PostgreSQL then skips parsing and planning them.
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = (
        os.environ.get("EPPARK_DB_SERVER_SIDE_BINDING", "1") == "1"
    )
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Tests use a file, not shared-cache memory: the gateway's threads need real locking.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if TESTING:  # hashing strength is not under test; seconds per test user are
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [Path(__file__).resolve().parent / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on a missing folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# whitenoise streams files synchronously; under ASGI Django warns about it on every file.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous")
WHITENOISE_USE_FINDERS = True  # serve straight from the apps when collectstatic has not run
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("EPPARK_MEDIA_DIR", VAR_DIR / "media")).resolve()
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

LOGIN_URL = "admin:login"

# The gate loop's clocks (seconds): see eppark.devices.outbox and eppark.stays.
EPPARK_PRESENT_TTL_S = int(os.environ.get("EPPARK_PRESENT_TTL_S", "120"))
EPPARK_OPEN_TTL_S = int(os.environ.get("EPPARK_OPEN_TTL_S", "10"))
EPPARK_READ_DEDUP_SECONDS = int(os.environ.get("EPPARK_READ_DEDUP_SECONDS", "10"))
EPPARK_CONGESTION_SECONDS = int(os.environ.get("EPPARK_CONGESTION_SECONDS", "60"))
# A camera push not decided this long after it arrived is refused (503), never acted on late.
EPPARK_PUSH_DEADLINE_S = float(os.environ.get("EPPARK_PUSH_DEADLINE_S", "3"))
# The payments worker (eppark.payments.worker): its round, its book-keeping jobs' round, and
# how long a payment code awaiting the driver's confirmation is polled before it is reversed.
EPPARK_PAYMENTS_POLL_S = float(os.environ.get("EPPARK_PAYMENTS_POLL_S", "0.3"))
EPPARK_PAYMENTS_JOBS_S = float(os.environ.get("EPPARK_PAYMENTS_JOBS_S", "30"))
EPPARK_CODEPAY_GIVE_UP_S = float(os.environ.get("EPPARK_CODEPAY_GIVE_UP_S", "45"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": os.environ.get("EPPARK_LOG_LEVEL", "WARNING")},
    # one line per failed reconnection attempt; ours say "database unreachable"/"back" once
    "loggers": {"psycopg.pool": {"level": "ERROR"}},
}
