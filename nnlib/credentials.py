"""Database URLs without their passwords: what may be printed, logged or stored.

A password never belongs in a notebook, a log or a command line that others can read.
``without_password`` moves one given in a URL into ``PGPASSWORD`` (which libpq, and so
psycopg, reads, as it reads ``~/.pgpass``) and returns the URL without it; ``masked``
is the URL to show a person.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

MASK = "***"


def _netloc(parts, password):
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if password is not None:
        user = f"{user}:{password}"
    return f"{user}@{host}" if user else host


def password_of(url):
    """The password written in ``url``, or None."""
    try:
        return urlsplit(str(url)).password
    except ValueError:  # a malformed port: no password to find
        return None


def masked(url):
    """``url`` with its password (if any) replaced by ``***``: safe to print."""
    url = str(url)
    if password_of(url) is None:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=_netloc(parts, MASK)))


def without_password(url, environ=None):
    """``url`` without its password; the password, if there was one, goes to
    ``environ["PGPASSWORD"]`` (``os.environ`` by default), where libpq finds it."""
    url = str(url)
    password = password_of(url)
    if password is None:
        return url
    (os.environ if environ is None else environ)["PGPASSWORD"] = password
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=_netloc(parts, None)))
