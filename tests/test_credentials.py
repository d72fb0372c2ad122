"""Database URLs without their passwords (nnlib.credentials)."""
import os

import pytest

from nnlib.credentials import masked, password_of, without_password


@pytest.mark.parametrize("url, password, shown, bare", [
    ("postgresql://nn:s3cret@db.example:5433/nnlib", "s3cret",
     "postgresql://nn:***@db.example:5433/nnlib", "postgresql://nn@db.example:5433/nnlib"),
    ("postgresql+psycopg://nn:p@ss@h/db?sslmode=require", "p@ss",
     "postgresql+psycopg://nn:***@h/db?sslmode=require",
     "postgresql+psycopg://nn@h/db?sslmode=require"),
    ("postgresql://nn:pw@[::1]:5432/db", "pw", "postgresql://nn:***@[::1]:5432/db",
     "postgresql://nn@[::1]:5432/db"),
    ("postgresql://:pw@h/db", "pw", "postgresql://:***@h/db", "postgresql://h/db"),
    ("postgresql://nn@h:5432/db", None, "postgresql://nn@h:5432/db",
     "postgresql://nn@h:5432/db"),
    ("sqlite:///runs/q5.db", None, "sqlite:///runs/q5.db", "sqlite:///runs/q5.db"),
])
def test_urls(url, password, shown, bare):
    assert password_of(url) == password
    assert masked(url) == shown
    environ = {"PGPASSWORD": "before"}
    assert without_password(url, environ) == bare
    assert environ == {"PGPASSWORD": "before" if password is None else password}


def test_without_password_writes_os_environ_by_default(monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)  # restored afterwards
    assert without_password("postgresql://nn:s3cret@h/db") == "postgresql://nn@h/db"
    assert os.environ["PGPASSWORD"] == "s3cret"


def test_an_escaped_password_is_decoded():
    environ = {}
    without_password("postgresql://nn:p%40ss%2Fw@h/db", environ)
    assert environ == {"PGPASSWORD": "p@ss/w"}  # what libpq would read from the URL


def test_a_malformed_port_is_still_masked():
    assert masked("postgresql://nn:s3cret@h:port/db") == "postgresql://nn:***@h:port/db"


def test_a_malformed_address_is_still_masked():
    assert "s3cret" not in masked("postgresql://nn:s3cret@[::1/db")


def test_an_unescaped_slash_in_the_password_is_still_masked():
    assert "cr/et" not in masked("postgresql://nn:s3cr/et@h/db")


def test_masking_keeps_what_follows_the_host():
    # an "@" after the host is not the end of the password; a URL without a host (libpq's
    # socket folder in the query) keeps its empty host
    assert masked("postgresql://u:pw@host/db?application_name=a@b") == (
        "postgresql://u:***@host/db?application_name=a@b")
    assert masked("postgresql://u:pw@/db?host=/run/postgresql") == (
        "postgresql://u:***@/db?host=/run/postgresql")
