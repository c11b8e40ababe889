"""Secrets kept out of what tuner-app prints, logs or records: every password, token or key in a URI (its
userinfo, its query) or in a key=value connection string (libpq, ODBC) is shown as ***, and nothing else
changes. Also the hooks that apply it to every log record and uncaught traceback."""

from __future__ import annotations

import logging
import re
import sys
import traceback
from urllib.parse import unquote_plus

HIDDEN = "***"
# A key holds a secret if, lower-cased and without its - _ . separators, it is one of SECRET_NAMES or ends
# with one of SECRET_ENDINGS (sslpassword, X-Password, client_secret, access_token, api_key, AccountKey, ...).
SECRET_NAMES = frozenset({"pass", "auth", "key", "sig"})
SECRET_ENDINGS = ("password", "passwd", "passphrase", "pwd", "secret", "token", "apikey", "accesskey",
                  "secretkey", "privatekey", "accountkey", "credential", "credentials", "signature",
                  "authorization")
MAX_NESTING = 4  # a URI in a URI in a URI...: deeper than this, all but the scheme is hidden

# A quoted value runs to its closing quote (libpq's \' escape, ODBC's {..}} ), or to the end if there is none.
_QUOTED = r"'(?:[^'\\]|\\.?)*'?|\"(?:[^\"\\]|\\.?)*\"?|\{(?:[^}]|\}\})*\}?"
# A URI runs to the next whitespace; a key=value pair's key starts a word (or follows a %XX escape), "=" may be
# percent-encoded and spaced (libpq). Neither starts mid-word, so a long word costs one pass.
_SECRET_OR_URI = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<uri>[A-Za-z][A-Za-z0-9+.-]*://\S*)"
    rf"|(?:(?<![\w.%-])|(?<=%[0-9A-Fa-f]{{2}}))(?P<key>[A-Za-z_][\w.-]*)(?P<eq>\s*(?:=|%3[dD])\s*)"
    rf"(?P<value>{_QUOTED}|\S+)")
# scheme://user:PASSWORD@host: the password runs to the last "@" (it may hold "@", ":", "/", "?").
_USERINFO = re.compile(r"(?P<head>[^:/?#]+://[^:/?#]*:)(?P<password>.+)@", re.DOTALL)
_CLOSERS = {"'": "'", '"': '"', "`": "`", "(": ")", "[": "]", "{": "}", "<": ">"}
_SENTENCE_END = re.compile(r"[.,;:!?)\]}>'\"`]*")
_ALREADY_HIDDEN = re.compile(r"\*\*\*[.,;:!?)\]}>'\"`]*")  # a redacted value, then a message's punctuation


def redact(text) -> str:
    """`text` (str() of it) with every secret in it replaced by ***."""
    return _redact(str(text), 0)


def is_secret_name(key: str) -> bool:
    name = re.sub(r"[-_.]", "", unquote_plus(key)).lower()
    return name in SECRET_NAMES or name.endswith(SECRET_ENDINGS)


def uri_password(uri: str) -> str | None:
    """The password in a URI's userinfo as redact() sees it (to the last "@"), or None if it has none."""
    found = _USERINFO.match(uri.split(None, 1)[0]) if uri.strip() else None
    return found["password"] if found else None


def _redact(text: str, depth: int) -> str:
    pieces, position = [], 0
    while found := _SECRET_OR_URI.search(text, position):
        pieces.append(text[position:found.start()])
        if found["uri"]:
            uri, rest = _split_closing(text, found.start(), found["uri"])
            pieces.append(_redact_uri(uri, depth) + rest)
            position = found.end()
        elif is_secret_name(found["key"]):
            value = found["value"]
            pieces.append(f"{found['key']}{found['eq']}{value if _ALREADY_HIDDEN.fullmatch(value) else _hidden(value)}")
            position = found.end()
        else:  # an ordinary pair: its value is searched like the rest (libpq options='-c password=...')
            pieces.append(text[found.start():found.start("value")])
            position = found.start("value")
    return "".join(pieces) + text[position:]


def _hidden(value: str) -> str:
    """*** in place of the value, in its quotes if it had any (so a second redact finds the same value)."""
    closer = _CLOSERS.get(value[0]) if value[0] in "'\"{" else None
    if not closer:
        return HIDDEN
    return value[0] + HIDDEN + (closer if len(value) > 1 and value.endswith(closer) else "")


def _split_closing(text: str, start: int, token: str) -> tuple[str, str]:
    """(the URI, the quote or bracket that closes the one before it, and what ends the sentence)."""
    closer = _CLOSERS.get(text[start - 1]) if start else None
    at = token.rfind(closer) if closer else -1
    if at > 0 and _SENTENCE_END.fullmatch(token, at):
        return token[:at], token[at:]
    return token, ""


def _redact_uri(uri: str, depth: int) -> str:
    """The URI with its userinfo password, and each query value that is or holds a secret, hidden."""
    if depth >= MAX_NESTING:
        return uri[:uri.index("://") + 3] + HIDDEN
    userinfo = _USERINFO.match(uri)
    head = f"{userinfo['head']}{HIDDEN}@" if userinfo else uri[:uri.index("://") + 3]
    rest = uri[len(userinfo[0]):] if userinfo else uri[len(head):]
    path, mark, query = re.split(r"([?#])", rest, maxsplit=1) if re.search(r"[?#]", rest) else (rest, "", "")
    pairs = [_query_pair(pair, depth) for pair in query.split("&")] if mark else []
    return head + _redact(path, depth + 1) + mark + "&".join(pairs)


def _query_pair(pair: str, depth: int) -> str:
    key, eq, value = pair.partition("=")
    if not value:
        return pair
    if _ALREADY_HIDDEN.fullmatch(value):
        return pair
    if is_secret_name(key) or depth >= MAX_NESTING or any(
            _redact(form, depth + 1) != form for form in (value, unquote_plus(value))):  # holds one, encoded or not
        return f"{key}{eq}{HIDDEN}"
    return pair


def redact_logging() -> None:
    """From now on, redact every log record's message and traceback, whichever logger or handler writes it
    (MLflow's loggers have handlers of their own). Calling it again changes nothing."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts", False):
        logging.setLogRecordFactory(_redacting(factory))


def redact_tracebacks() -> None:
    """Redact the traceback of an exception nothing caught (a bug)."""
    sys.excepthook = _print_redacted


def _redacting(factory):
    def make_record(*args, **kwargs):
        record = factory(*args, **kwargs)
        _redact_record(record)
        return record

    make_record.redacts = True
    return make_record


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 -- a malformed call: logging reports it when it formats the record
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and record.exc_info[0]:  # the formatter prints exc_text instead of formatting exc_info
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info))).rstrip("\n")


def _print_redacted(exc_type, exc, tb) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))

