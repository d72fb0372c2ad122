"""Database URLs without their passwords: what may be printed, logged or stored.

A password never belongs in a notebook, a log or a command line that others can read.
``without_password`` moves one given in a URL into ``PGPASSWORD`` (which libpq, and so
psycopg, reads, as it reads ``~/.pgpass``) and returns the URL without it; ``masked``
is the URL to show a person.
"""
from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit, urlunsplit

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
    """The password written in ``url`` (%-escapes decoded, as libpq reads it), or None."""
    try:
        password = urlsplit(str(url)).password
    except ValueError:  # a malformed port: no password to find
        return None
    return None if password is None else unquote(password)


def masked(url):
    """``url`` with its password (if any) replaced by ``***``: safe to print, even malformed."""
    url = str(url)
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            return urlunsplit(parts._replace(netloc=_netloc(parts, MASK)))
    except ValueError:  # a malformed address or port
        pass
    # what urlsplit cannot take apart loses all from the user's ":" to the last "@"
    return re.sub(r"(://[^:@/]*):.*@", rf"\1:{MASK}@", url)


def without_password(url, environ=None):
    """``url`` without its password; the password, if there was one, goes to
    ``environ["PGPASSWORD"]`` (``os.environ`` by default), where libpq finds it."""
    url = str(url)
    password = password_of(url)
    if password is None:
        return url
    parts = urlsplit(url)
    netloc = _netloc(parts, None)  # a malformed port fails here, before anything is written
    (os.environ if environ is None else environ)["PGPASSWORD"] = password
    return urlunsplit(parts._replace(netloc=netloc))
