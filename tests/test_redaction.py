"""redact(): every secret of a store URI or connection string is hidden in whatever tuner-app prints, logs or
records (issue 23, case 3), and nothing else changes. A table of the forms MLflow and SQLAlchemy accept, a
property-based fuzz of passwords of any text in each form, the store URIs refused because a driver would read
them another way, and the CLI's own lines: errors, log records, MLflow params and tags."""

from __future__ import annotations

import io
import logging
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from conftest import SMOKE_SPACE, cli_error_line, free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner_app.cli import cli
from tuner_app.errors import TunerAppError
from tuner_app.redaction import redact, redact_logging
from tuner_app.tracking import store, tracker

REDACTED = [
    # userinfo: percent-encoded, or holding "@", ":", "/" and "?" as they are
    ("postgresql://tuner:p%40ss@db:5432/mlflow", "postgresql://tuner:***@db:5432/mlflow"),
    ("postgresql://u:p@ss@127.0.0.1:1/db", "postgresql://u:***@127.0.0.1:1/db"),
    ("mysql+pymysql://u:a:b/c?d@h/db", "mysql+pymysql://u:***@h/db"),
    ("https://:tok3n@mlflow.example/", "https://:***@mlflow.example/"),
    ("postgresql://me@corp:pw@h/db", "postgresql://me@corp:***@h/db"),
    # query parameters whose name says secret, any case, anywhere in the query
    ("postgresql://u@127.0.0.1:1/db?password=secret", "postgresql://u@127.0.0.1:1/db?password=***"),
    ("postgresql:///db?host=h&port=1&user=u&PassWord=secret&sslmode=require",
     "postgresql:///db?host=h&port=1&user=u&PassWord=***&sslmode=require"),
    *[(f"http://h/x?a=1&{name}=s3&b=2", f"http://h/x?a=1&{name}=***&b=2")
      for name in ("passwd", "pwd", "secret", "token", "access_token", "api_key", "apikey", "API-KEY", "auth",
                   "sslpassword", "client_secret", "key", "X-Password", "sig", "AccountKey", "pass%77ord")],
    # a query value holding a libpq string or a URI, encoded or not
    ("postgresql://u@h/db?options=-c%20password%3Dsecret&sslmode=require",
     "postgresql://u@h/db?options=***&sslmode=require"),
    ("http://h/login?next=http%3A%2F%2Fu%3Apw%40h2%2F&lang=en", "http://h/login?next=***&lang=en"),
    # libpq key=value: unquoted, spaced, quoted with spaces and escaped quotes; ODBC braces
    ("host=127.0.0.1 port=1 dbname=db user=u password=secret", "host=127.0.0.1 port=1 dbname=db user=u password=***"),
    ("host=h password = 'sec ret\\' x' user=u", "host=h password = '***' user=u"),
    ("dbname=db options='-c password=secret' user=u", "dbname=db options='-c password=*** user=u"),
    ("DRIVER={ODBC 18};SERVER=h;UID=u;PWD={se;c}}ret};Encrypt=yes", "DRIVER={ODBC 18};SERVER=h;UID=u;PWD={***};Encrypt=yes"),
    # several URIs in one message, quoted or ending a sentence
    ("stores postgresql://a:x@h1/d, mysql://b:y@h2/d and 'http://h3/?token=z'.",
     "stores postgresql://a:***@h1/d, mysql://b:***@h2/d and 'http://h3/?token=***'."),
    ("MLflow store postgresql://u:secret@h/db.", "MLflow store postgresql://u:***@h/db."),
    ("(see <postgresql://u@h/db?password=secret>)", "(see <postgresql://u@h/db?password=***>)"),
    ("url=http://u:pw@h/x dsn=\"host=h password=x\"", "url=http://u:***@h/x dsn=\"host=h password=***"),
    ("GET /api/2.0/runs?run_id=1&page_token=abc HTTP/1.1", "GET /api/2.0/runs?run_id=1&page_token=*** HTTP/1.1"),
]

KEPT = [
    "http://127.0.0.1:5000/health",
    "sqlite:////tmp/a b/mlflow.db?mode=ro",
    "postgresql://tuner@db/mlflow",  # a user without a password stays readable
    "postgresql://u:@h/db",
    "/home/u/runs/kws/trial_0 C:\\Users\\u\\runs file:///tmp/x.db",
    "sslkey=/etc/client.key passfile=/home/u/.pgpass authSource=admin",
    "Access denied for user 'u'@'localhost' (using password: YES)",
    "epoch 3: loss=0.25, val_accuracy=0.5 [1/4] best 0.75",
    "postgresql://u:***@h/db?password=***",  # already redacted
    "MLflow store host=h user=u password=***: MLflow cannot use it",  # and redacted again as part of a message
]


@pytest.mark.parametrize(("text", "expected"), REDACTED)
def test_every_form_of_secret_is_hidden_and_the_rest_kept(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize("text", KEPT)
def test_text_without_a_secret_is_left_as_it_was(text):
    assert redact(text) == text


def test_hostile_nesting_and_long_words_end_redacted():
    nested = "http://h/?next=" * 3000 + "http://u:pw@h/"  # a URI in a URI ...: bounded, no RecursionError
    assert "pw" not in redact(nested)
    assert redact("a" * 100_000 + " password=x") == "a" * 100_000 + " password=***"


# --- fuzz: a password of any text, in each form, in a message --------------------------------------------

MARK = "Qz9Mark"  # in every generated password, nowhere else: if it is shown, the password leaked
SECRET_KEYS = ["password", "PASSWORD", "Passwd", "pwd", "secret", "token", "access_token", "api_key", "auth",
               "sslpassword", "client_secret", "X-Password"]
PUNCTUATION = "@:/?&='\" %#\\{};,.+"
passwords = st.builds(lambda head, tail: head + MARK + tail,
                      *[st.text(st.sampled_from(PUNCTUATION) | st.characters(codec="utf-8"), max_size=8)] * 2)


def _libpq_quoted(password: str) -> str:
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in_uri_unescaped(password: str) -> bool:
    return not any(character.isspace() for character in password)


FORMS = {  # name -> (the form with the password in it, whether the password may be written there as it is)
    "userinfo": (lambda pw, key: f"postgresql://tuner:{quote(pw, safe='')}@db.example:5432/mlflow", None),
    "userinfo_raw": (lambda pw, key: f"mysql+pymysql://tuner:{pw}@db.example:3306/mlflow", _in_uri_unescaped),
    "query": (lambda pw, key: f"postgresql://tuner@db.example/mlflow?sslmode=require&{key}={quote(pw, safe='')}"
                              "&application_name=x", None),
    "query_raw": (lambda pw, key: f"postgresql://tuner@db.example/mlflow?{key}={pw}&sslmode=require",
                  lambda pw: _in_uri_unescaped(pw) and "&" not in pw),
    "libpq": (lambda pw, key: f"host=db.example dbname=mlflow user=tuner {key}={_libpq_quoted(pw)} port=5432",
              None),
    "libpq_raw": (lambda pw, key: f"host=db.example dbname=mlflow user=tuner {key}={pw}",
                  lambda pw: _in_uri_unescaped(pw) and pw[0] not in "'\"{"),
    "libpq_in_query": (lambda pw, key: "postgresql://tuner@db.example/mlflow?options="
                                       + quote(f"-c {key}={_libpq_quoted(pw)}", safe=""), None),
}
MESSAGES = ["Error: MLflow store {} does not answer: connection refused", "could not use '{}'.", "{}",
            "({}) was refused", "tried {}, then {}"]


@settings(max_examples=400, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.filter_too_much])
@given(form=st.sampled_from(sorted(FORMS)), password=passwords, key=st.sampled_from(SECRET_KEYS),
       message=st.sampled_from(MESSAGES))
def test_no_password_survives_redaction_in_any_form(form, password, key, message):
    make, fits = FORMS[form]
    if fits and not fits(password):
        password = quote(password, safe="")  # as a user must write it there
    text = message.format(*[make(password, key)] * message.count("{}"))
    shown = redact(text)
    assert MARK not in shown and password not in shown
    assert "db.example" in shown and "mlflow" in shown and message.split("{}")[0] in shown
    assert redact(shown) == shown


# --- store URIs a driver would read another way: refused before use ---------------------------------------

@pytest.mark.parametrize(("uri", "words"), [
    ("postgresql://u:p@ss@127.0.0.1:1/db", "--tracking-uri postgresql://u:***@127.0.0.1:1/db: more than one '@'"),
    ("postgresql://u:pa ss@127.0.0.1:1/db", "--tracking-uri: the URI holds a space; write each space in it as %20"),
])
def test_a_store_uri_read_two_ways_is_refused_without_its_password(uri, words):
    with pytest.raises(TunerAppError) as refused:
        store.check_uri(uri)
    assert str(refused.value).startswith(words) and "ss" not in str(refused.value).replace("pass", "")


@pytest.mark.parametrize("uri", ["postgresql://u:p%40ss@h/db", "postgresql://u@h/db?application_name=a",
                                 "sqlite:////tmp/me@home/my runs/mlflow.db", "http://127.0.0.1:5000"])
def test_a_store_uri_read_one_way_is_accepted(uri):
    store.check_uri(uri)


# --- what the CLI prints, logs and records ----------------------------------------------------------------

@pytest.mark.parametrize("uri", [
    "postgresql://u@127.0.0.1:{port}/db?password=secret",
    "postgresql:///db?host=127.0.0.1&port={port}&user=u&password=secret",
    "postgresql://u:p@secret@127.0.0.1:{port}/db",
    "host=127.0.0.1 port={port} dbname=db user=u password='a secret'",
])
def test_search_with_a_password_in_its_store_uri_prints_one_line_without_it(tmp_path, monkeypatch, uri):
    monkeypatch.chdir(tmp_path)
    uri = uri.format(port=free_port())  # nothing listens: refused at once, before any training
    result = CliRunner().invoke(cli, ["search", "--space", SMOKE_SPACE, "--tracking-uri", uri])
    line = cli_error_line(result)
    assert "secret" not in result.output and "127.0.0.1" in line and not (tmp_path / "runs").exists()


@pytest.fixture
def redacted_logging():
    previous = logging.getLogRecordFactory()
    redact_logging()
    redact_logging()  # a second call must not wrap the first
    yield
    logging.setLogRecordFactory(previous)


def test_every_log_record_is_redacted_whichever_handler_writes_it(redacted_logging):
    written = io.StringIO()
    own = logging.getLogger("test_redaction.own_handler")  # as MLflow's: a handler of its own, not propagated
    own.addHandler(logging.StreamHandler(written))
    own.propagate = False
    try:
        own.warning("store %s refused", "postgresql://u@h/db?password=secret")
        try:
            raise ConnectionError("cannot reach http://u:secret@h:5000")
        except ConnectionError:
            own.exception("request to %s failed", "http://u:secret@h:5000")
    finally:
        own.handlers.clear()
    assert "secret" not in written.getvalue()
    assert "postgresql://u@h/db?password=***" in written.getvalue() and "ConnectionError" in written.getvalue()


class _RecordingClient:
    def __init__(self):
        self.batches = []

    def log_batch(self, run_id, metrics=(), params=(), tags=()):
        self.batches.append({**{p.key: p.value for p in params}, **{t.key: t.value for t in tags}})

    def set_terminated(self, run_id, status):
        pass


def test_params_and_tags_logged_to_mlflow_are_redacted():
    client = _RecordingClient()
    tracker._log_params(client, "run", {"note": "dsn=host=h password=secret", "filters": "8"})
    tracker._end_run(client, "run", "FAILED", "FAILED", "store postgresql://u:secret@h/db went away")
    assert client.batches[0] == {"note": "dsn=host=h password=***", "filters": "8"}
    assert client.batches[1][tracker.REASON_TAG] == "store postgresql://u:***@h/db went away"


def test_an_uncaught_traceback_is_printed_redacted(monkeypatch, capsys):
    import sys

    from tuner_app.redaction import redact_tracebacks

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # put back after the test
    redact_tracebacks()
    try:
        raise RuntimeError("engine for postgresql://u@h/db?password=secret failed")
    except RuntimeError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    printed = capsys.readouterr().err
    assert "RuntimeError" in printed and "secret" not in printed


def test_the_tracking_servers_own_output_is_forwarded_redacted(capsys):
    from tuner_app.tracking import ui

    ui._forward_output(io.StringIO("ERROR: cannot open postgresql://u:secret@h/db\n"))
    assert capsys.readouterr().err == "ERROR: cannot open postgresql://u:***@h/db\n"
