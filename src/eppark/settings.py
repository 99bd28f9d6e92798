"""Django settings, all from the environment (contracts.md "Operations").

``DATABASE_URL`` (default: a SQLite file under ``./var/``), ``REDIS_URL``,
``MQTT_URL``, ``EPPARK_MEDIA_DIR``, ``EPPARK_SECRET_KEY`` (must be set outside the
demo: ``EPPARK_DEMO=1`` allows the built-in development key), ``EPPARK_DEBUG``,
``EPPARK_ALLOWED_HOSTS`` (comma-separated).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

VAR_DIR = Path(os.environ.get("EPPARK_VAR_DIR", Path.cwd() / "var")).resolve()
DEMO = os.environ.get("EPPARK_DEMO") == "1"
DEBUG = os.environ.get("EPPARK_DEBUG", "1" if DEMO else "0") == "1"

_DEV_KEY = "eppark-demo-only-not-secret"
TESTING = bool(os.environ.get("PYTEST_VERSION") or os.environ.get("EPPARK_TESTING"))
SECRET_KEY = os.environ.get("EPPARK_SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEMO or DEBUG or TESTING):
        raise ImproperlyConfigured("EPPARK_SECRET_KEY must be set outside the demo")
    SECRET_KEY = _DEV_KEY

ALLOWED_HOSTS = [h for h in os.environ.get("EPPARK_ALLOWED_HOSTS", "").split(",") if h] or (
    ["*"] if DEBUG else ["localhost", "127.0.0.1"]
)

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
    "eppark.console",
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
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": int(os.environ.get("EPPARK_DB_POOL_SIZE", "20")),
        "timeout": 10,
    }
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

# Where drivers' phones reach this server (the robots' QR codes encode URLs under it).
EPPARK_PUBLIC_URL = os.environ.get("EPPARK_PUBLIC_URL", "http://127.0.0.1:8000")
# The gate loop's clocks (seconds): see eppark.devices.outbox and eppark.stays.
EPPARK_PRESENT_TTL_S = int(os.environ.get("EPPARK_PRESENT_TTL_S", "120"))
EPPARK_OPEN_TTL_S = int(os.environ.get("EPPARK_OPEN_TTL_S", "10"))
EPPARK_READ_DEDUP_SECONDS = int(os.environ.get("EPPARK_READ_DEDUP_SECONDS", "10"))
EPPARK_CONGESTION_SECONDS = int(os.environ.get("EPPARK_CONGESTION_SECONDS", "60"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("EPPARK_LOG_LEVEL", "WARNING")},
}
