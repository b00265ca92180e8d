"""Settings of the dbsync test project: a small multi-tenant Django application.

The database comes from the environment (nothing else is configurable):
DJANGO_DB_NAME (required), DJANGO_DB_HOST, DJANGO_DB_PORT, DJANGO_DB_USER, DJANGO_DB_PASSWORD.

DJANGO_APPS_ORDER=reversed lists the project's apps in the opposite order. Content types and
permissions are created in the order of INSTALLED_APPS, so a database migrated that way (the
UAT database of the tests) gives the same models other content type ids, as happens to real
projects whose INSTALLED_APPS were reordered over the years.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "dbsync-test-project-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

PROJECT_APPS = [
    "apps.tenants",
    "apps.catalog",
    "apps.suppliers",
    "apps.customers",
    "apps.orders",
    "apps.notes",
]
if os.environ.get("DJANGO_APPS_ORDER") == "reversed":
    PROJECT_APPS.reverse()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    *PROJECT_APPS,
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "djproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DJANGO_DB_NAME", ""),
        "HOST": os.environ.get("DJANGO_DB_HOST", ""),
        "PORT": os.environ.get("DJANGO_DB_PORT", ""),
        "USER": os.environ.get("DJANGO_DB_USER", ""),
        "PASSWORD": os.environ.get("DJANGO_DB_PASSWORD", ""),
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
