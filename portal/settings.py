"""Settings of the science portal, read from the environment.

A `.env` file in the repository root is read first if present; `.env.example` lists every key
with its default. With no configuration at all the portal runs embedded: SQLite, Django-Q2's
ORM broker and files on local disk, all under one work directory (`PORTAL_WORKDIR`).
"""

import secrets
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

WORKDIR = Path(env.str("PORTAL_WORKDIR", default=str(BASE_DIR / "var"))).resolve()
WORKDIR.mkdir(parents=True, exist_ok=True)
(WORKDIR / "tmp").mkdir(exist_ok=True)


def _embedded_secret_key() -> str:
    # One key per work directory, made on first start, so sessions survive restarts without a
    # secret ever being committed. Production sets DJANGO_SECRET_KEY instead.
    path = WORKDIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _embedded_secret_key()
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "portal",
    "portal.accounts",
    "portal.projects",
    "portal.uploads",
    "django_q",
    "nodes",
    "msa",
    "jobs",
    "predictions",
    "training",
    "designs",
    "screens",
]

MIDDLEWARE = [
    # First: counts every response by status (portal_http_requests_total), redirects included.
    "portal.metrics.count_responses",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# Embedded: one SQLite file in the work directory. Several processes (web, scheduler, node)
# write to it, so WAL lets readers go on during a write, IMMEDIATE transactions take the write
# lock up front (no deadlock on lock upgrade), and the timeout waits for the lock.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{WORKDIR / 'portal.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests start real processes (nodes, servers) that must see the test database, so it is
    # a file beside the main one rather than SQLite's private in-memory database.
    DATABASES["default"]["TEST"] = {"NAME": str(WORKDIR / "test-portal.sqlite3")}
elif env.bool("PORTAL_DB_POOL", default=True) and "qcluster" not in sys.argv:
    # A pool of connections per process (psycopg's): under ASGI every request runs in a thread
    # of its own, so Django's per-thread persistent connections would open one per request,
    # and opening a PostgreSQL connection costs more than most queries. Not in a Django-Q2
    # cluster: it forks its workers, and a pool does not survive a fork.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "pool",
        {
            "min_size": env.int("PORTAL_DB_POOL_MIN", default=1),
            "max_size": env.int("PORTAL_DB_POOL_MAX", default=8),
            "timeout": 30,
        },
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # Single-threaded, long-lived processes (task workers) keep their connection.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("PORTAL_DB_CONN_MAX_AGE", default=300)
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: the cache (rate limits), Django-Q2's broker and the channel layer ----------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    # Live events cross processes (runners on nodes → the web server's WebSockets) through
    # Redis publish/subscribe.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Embedded: no layer between processes; live pages read new events from the database
    # every PORTAL_LIVE_POLL seconds instead.
    CHANNEL_LAYERS = {}
PORTAL_LIVE_POLL = env.float("PORTAL_LIVE_POLL", default=0.5)

# --- Storage --------------------------------------------------------------------------------
# Uploads and results are stored content-addressed under `blobs/`. Local files by default; an
# S3-compatible bucket (AWS, MinIO, Ceph) when PORTAL_S3_BUCKET is set.
MEDIA_ROOT = WORKDIR / "files"
MEDIA_URL = "/files/"  # never served directly: downloads go through views that check access
FILE_UPLOAD_TEMP_DIR = str(WORKDIR / "tmp")  # same filesystem as MEDIA_ROOT: a save is a rename
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750

S3_BUCKET = env.str("PORTAL_S3_BUCKET", default="")
if S3_BUCKET:
    default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env.str("PORTAL_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("PORTAL_S3_REGION", default="") or None,
            "access_key": env.str("PORTAL_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("PORTAL_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("PORTAL_S3_PREFIX", default=""),
            # Content-addressed keys: the same key always holds the same bytes.
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
else:
    default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "allow_overwrite": True},
    }
STORAGES = {
    "default": default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

PORTAL_MAX_UPLOAD_BYTES = env.int("PORTAL_MAX_UPLOAD_BYTES", default=2 * 1024**3)
# Largest JSON or form body (files go through uploads, which PORTAL_MAX_UPLOAD_BYTES bounds);
# beyond it the API answers 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("PORTAL_MAX_REQUEST_BYTES", default=5 * 1024**2 // 2)

# --- Static files (served by WhiteNoise, from `collectstatic` output) ------------------------
STATIC_URL = "/static/"
STATIC_ROOT = WORKDIR / "static"
# The portal's own assets, and the browser libraries `npm ci` installs (package.json).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist"),
    # Mol*'s prebuilt viewer (molstar.js, molstar.css), for prediction pages.
    ("vendor/molstar", BASE_DIR / "node_modules" / "molstar" / "build" / "viewer"),
]
# Without a collectstatic run (tests, development) WhiteNoise can serve from the sources.
WHITENOISE_USE_FINDERS = env.bool("PORTAL_STATIC_FROM_SOURCES", default=DEBUG)

# --- Accounts -------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- HTTPS and the proxy in front (production) ------------------------------------------------
# Behind nginx terminating TLS, PORTAL_HTTPS=1 turns on redirects, secure cookies and HSTS.
HTTPS = env.bool("PORTAL_HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("PORTAL_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("PORTAL_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("PORTAL_HSTS_PRELOAD", default=HTTPS)
if env.bool("PORTAL_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "portal.errorpages.csrf_failure"
SESSION_COOKIE_HTTPONLY = True
# How many proxies stand in front of the portal: rate limits by address trust that many
# X-Forwarded-For entries and no more, so a client cannot claim someone else's address.
NUM_PROXIES = env.int("PORTAL_NUM_PROXIES", default=0)

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes a missing credential a 401.
        "portal.accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.throttling.UserThrottle",
        "portal.throttling.AddressThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("PORTAL_THROTTLE_USER", default="1200/min"),
        "address": env.str("PORTAL_THROTTLE_ADDRESS", default="2400/min"),
    },
    "NUM_PROXIES": NUM_PROXIES,
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # The API takes JSON (bounded in size and nesting); uploads take multipart on their own.
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Science portal API",
    "DESCRIPTION": (
        "Projects, uploads and jobs of the science portal. Authenticate scripts with "
        "`Authorization: Token <key>`; create a key on the Tokens page or with "
        "`python manage.py createtoken USERNAME`. Errors are JSON `{code, detail}`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"JobState": "jobs.models.State"},
    # `<id:...>` in a URL: portal/ids.py's IdConverter.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1}
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.schema.document_errors",
    ],
}

# --- Jobs and nodes -------------------------------------------------------------------------
PORTAL_JOB_TIME_LIMIT = env.int("PORTAL_JOB_TIME_LIMIT", default=3 * 3600)
PORTAL_JOB_MAX_TIME_LIMIT = env.int("PORTAL_JOB_MAX_TIME_LIMIT", default=7 * 24 * 3600)
PORTAL_JOB_SILENCE_LIMIT = env.int("PORTAL_JOB_SILENCE_LIMIT", default=30 * 60)
PORTAL_JOB_MAX_ATTEMPTS = env.int("PORTAL_JOB_MAX_ATTEMPTS", default=3)
# Seconds between SIGTERM and SIGKILL when a job is stopped.
PORTAL_JOB_KILL_GRACE = env.float("PORTAL_JOB_KILL_GRACE", default=2.0)
# Seconds a resident engine has to stop a job between its steps (a prediction's diffusion
# steps) when it is cancelled; it then stays warm for the next job. Past them it is killed.
PORTAL_ENGINE_STOP_GRACE = env.float("PORTAL_ENGINE_STOP_GRACE", default=5.0)
PORTAL_NODE_OFFLINE_AFTER = env.int("PORTAL_NODE_OFFLINE_AFTER", default=90)
PORTAL_HEARTBEAT_INTERVAL = env.float("PORTAL_HEARTBEAT_INTERVAL", default=30)
PORTAL_SCHEDULER_INTERVAL = env.float("PORTAL_SCHEDULER_INTERVAL", default=5)
# A job placed on a node whose process has not started after this long was lost by the
# broker (or the node's cluster died) and is placed again.
PORTAL_PLACEMENT_TIMEOUT = env.int("PORTAL_PLACEMENT_TIMEOUT", default=60)

# The MSA cache (msa/): a clean-up removes entries not used for this many days, then the least
# recently used until the rest fit in the budget (bytes); the scheduler runs one this often.
PORTAL_MSA_CACHE_MAX_AGE_DAYS = env.int("PORTAL_MSA_CACHE_MAX_AGE_DAYS", default=30)
PORTAL_MSA_CACHE_BUDGET = env.int("PORTAL_MSA_CACHE_BUDGET", default=20 * 2**30)
PORTAL_MSA_CLEANUP_INTERVAL = env.int("PORTAL_MSA_CLEANUP_INTERVAL", default=24 * 3600)
# An MMseqs2 / ColabFold MSA server (unset: none; sequences are sent only where set), with
# basic auth or an API-key header; searches at once across the pool, the pause between status
# checks and the longest a search may take, refusals included (seconds).
PORTAL_MSA_SERVER_URL = env.str("PORTAL_MSA_SERVER_URL", default="")
PORTAL_MSA_SERVER_USERNAME = env.str("PORTAL_MSA_SERVER_USERNAME", default="")
PORTAL_MSA_SERVER_PASSWORD = env.str("PORTAL_MSA_SERVER_PASSWORD", default="")
PORTAL_MSA_SERVER_API_KEY = env.str("PORTAL_MSA_SERVER_API_KEY", default="")
PORTAL_MSA_SERVER_API_KEY_HEADER = env.str("PORTAL_MSA_SERVER_API_KEY_HEADER", default="X-API-Key")
PORTAL_MSA_SERVER_AT_ONCE = env.int("PORTAL_MSA_SERVER_AT_ONCE", default=2)
PORTAL_MSA_SERVER_POLL = env.float("PORTAL_MSA_SERVER_POLL", default=5.0)
PORTAL_MSA_SERVER_TIMEOUT = env.float("PORTAL_MSA_SERVER_TIMEOUT", default=1800.0)
# A protein sequence database (FASTA) on this machine for local MSA searches (jackhmmer).
PORTAL_MSA_LOCAL_DB = env.str("PORTAL_MSA_LOCAL_DB", default="")
# Place jobs on a thread of their own after a submission instead of within its request
# (`manage.py serve` turns this on for the web server).
PORTAL_PLACE_IN_BACKGROUND = env.bool("PORTAL_PLACE_IN_BACKGROUND", default=False)
PORTAL_SCRATCH_KEEP = env.int("PORTAL_SCRATCH_KEEP", default=3)
PORTAL_ENGINE_IDLE_SECONDS = env.int("PORTAL_ENGINE_IDLE_SECONDS", default=600)
# Boltz-2 on a node: its cache (weights and `mols/`), and checkpoint files to use instead of the
# cache's (tests build tiny ones). The portal reads the cache's `mols/` to check inputs.
PORTAL_BOLTZ_CACHE = env.str("PORTAL_BOLTZ_CACHE", default=str(Path.home() / ".boltz"))
PORTAL_BOLTZ_CHECKPOINT = env.str("PORTAL_BOLTZ_CHECKPOINT", default="")
PORTAL_BOLTZ_AFFINITY_CHECKPOINT = env.str("PORTAL_BOLTZ_AFFINITY_CHECKPOINT", default="")
# AlphaFold 3 on a node (the `af3` kind): how the node runs AlphaFold 3's run_alphafold.py (a
# `docker run ...` line, or `python run_alphafold.py` in its environment; the node adds the
# flags), its weights' folder (obtained from Google DeepMind under their terms), its genetic
# databases (for its own data pipeline; optional), and its version, as the operator states it.
PORTAL_AF3_COMMAND = env.str("PORTAL_AF3_COMMAND", default="")
PORTAL_AF3_MODEL_DIR = env.str("PORTAL_AF3_MODEL_DIR", default="")
PORTAL_AF3_DB_DIR = env.str("PORTAL_AF3_DB_DIR", default="")
PORTAL_AF3_VERSION = env.str("PORTAL_AF3_VERSION", default="")
# Extra modules holding job kinds (tests register their own this way).
PORTAL_JOB_KIND_MODULES = env.list("PORTAL_JOB_KIND_MODULES", default=[])
# Set for a node's processes by `runnode`.
PORTAL_NODE_NAME = env.str("PORTAL_NODE_NAME", default="")
PORTAL_NODE_BOOT_ID = env.str("PORTAL_NODE_BOOT_ID", default="")
# The CPU threads each job and engine of the node may use (OMP_NUM_THREADS and the like);
# `runnode --threads-per-slot`, by default the host's cores shared out among its GPUs and CPU
# slots. 0: no limit (every process uses every core).
PORTAL_THREADS_PER_SLOT = env.int("PORTAL_THREADS_PER_SLOT", default=0)
# How many jobs a node's GPU runs at once (`runnode --jobs-per-gpu`): `auto`, as many as
# their memory estimates fit (up to PORTAL_LANES_AUTO), or a number (1: a job has its GPU to
# itself). Only kinds that share a GPU (predictions, affinity) take a lane beside another job;
# the estimates of what shares a GPU, plus PORTAL_GPU_HEADROOM bytes, must fit its memory.
PORTAL_JOBS_PER_GPU = env.str("PORTAL_JOBS_PER_GPU", default="auto")
PORTAL_LANES_AUTO = 8
PORTAL_GPU_HEADROOM = env.int("PORTAL_GPU_HEADROOM", default=2**30)

# --- Monitoring -----------------------------------------------------------------------------
# Prometheus scrapes /metrics from these addresses or networks, or with
# `Authorization: Bearer <PORTAL_METRICS_TOKEN>` (empty: no token accepted).
PORTAL_METRICS_ALLOWED = env.list("PORTAL_METRICS_ALLOWED", default=["127.0.0.1", "::1"])
PORTAL_METRICS_TOKEN = env.str("PORTAL_METRICS_TOKEN", default="")

# Django-Q2: one cluster per node, consuming that node's queue (Q_CLUSTER_NAME, set by
# `runnode`). Redis when REDIS_URL is set, else the ORM broker in the portal's database.
# The runner enforces job time limits itself; Django-Q2's own timeout only catches a runner
# that hangs, and `retry` (ORM broker redelivery) must exceed it.
_q_timeout = PORTAL_JOB_MAX_TIME_LIMIT + 3600
Q_CLUSTER = {
    "name": "portal",
    "workers": env.int("PORTAL_Q_WORKERS", default=2),
    "timeout": _q_timeout,
    "retry": _q_timeout + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": 100,
    "scheduler": False,
    "catch_up": False,
    "poll": env.float("PORTAL_Q_POLL", default=0.1),
    "recycle": 200,
    "label": "Task queue",
    "ALT_CLUSTERS": {},
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("PORTAL_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("PORTAL_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
