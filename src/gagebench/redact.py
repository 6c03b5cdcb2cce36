"""One masker for secrets in everything that leaves the process: output files
(``manifest.json``, ``report.html``, the rows' notes), log records, warnings, error
messages and what the CLI prints. Kept in one place so no two outputs can disagree.

What it masks (as ``***``):

- in settings trees (:func:`redact`): everything under a secret-looking key
  (``secret``, ``token``, ``password``, ``key``, ``Authorization``, ``Cookie``, ...);
- in any text (:func:`redact_text`): the user information of URLs (``user:pass@``), the
  values of secret-looking URL query parameters (``X-Amz-Signature``,
  ``X-Amz-Credential``, ``X-Amz-Security-Token``, SAS ``sig``, ``token``,
  ``access_token``, ...), the values of credential headers written out
  (``Authorization: Bearer ...``), and every secret value the process knows: those of
  the run's settings (:func:`remember_settings`) and of secret-looking environment
  variables (``AWS_SECRET_ACCESS_KEY``, ``*_TOKEN``, ``*_PASSWORD``, ...).

The edges apply it (:func:`install`): every log record (a log record factory, so every
logger and handler of the process, ``distributed``'s too), every warning, uncaught
exceptions' tracebacks and, in the CLI, stdout and stderr (:class:`MaskedStream`).
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import re
import sys
import threading
import traceback
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

MASK = "***"
# s3fs/botocore `key`/`secret`/`token`, `aws_secret_access_key`, `password`, `credentials`,
# `private_key`, `api_key`, HTTP headers `Authorization`, `Proxy-Authorization`, `Cookie`,
# `X-Amz-Security-Token`, `X-Api-Key`, query parameters `X-Amz-Signature`, ...
_SECRET_KEY = re.compile(
    r"secret|passw|passphrase|token|credential|private|key|authoriz|authenticat|cookie|"
    r"signature|connection_?string",
    re.IGNORECASE,
)
# Name a Kubernetes Secret and its keys, never hold a secret value: shown as they are.
_NOT_SECRET = frozenset({"secret_env", "secret_name", "keys"})
#: URL query parameters that carry a credential besides those :data:`_SECRET_KEY` names
#: (Azure SAS ``sig``, OAuth ``code``, a bare ``auth``).
_SECRET_PARAMS = frozenset({"sig", "code", "auth", "pwd", "pass"})
# up to the last "@" before the path: a password may hold a raw "@" (URL parsers split
# the host at the last one)
_URL_USERINFO = re.compile(r"(://)[^/?#\s'\"<>]+@")
# `?name=value`, `&name=value`, `;name=value` (also HTML-escaped `&amp;name=value`)
# (a value ends at ";" too: Azure connection strings, "AccountName=a;AccountKey=...")
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&;#\s'\"<>]+)")
# credential headers written out: `Authorization: Bearer x`, `'Cookie': 'a=b'`, JSON too
_HEADER = re.compile(
    r"(?P<name>(?<![\w-])(?:proxy-)?authorization|(?<![\w-])(?:set-)?cookie|"
    r"x-amz-security-token|x-api-key|x-auth-token|api-key)"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\"'\r\n]+)",
    re.IGNORECASE,
)
#: Environment variables whose values are secrets (names, case-insensitive).
_SECRET_ENV = re.compile(
    r"secret|passw|token|credential|private_key|api_?key|access_key|"
    r"account_?key|storage_?key|connection_?string",  # Azure's (adlfs reads them)
    re.IGNORECASE,
)
_NOT_SECRET_ENV = re.compile(r"_(file|path|dir|url|endpoint|region|type|name)$", re.IGNORECASE)
#: Shorter values are not masked wherever they appear (they would mask ordinary words);
#: keys, URLs and query strings still mask them where they are.
MIN_KNOWN_LENGTH = 8

_known: set[str] = set()
_known_forms: list[str] = []  # every written form of every known secret, longest first
_known_lock = threading.Lock()
_environment_read = False


def is_secret_key(key: str) -> bool:
    """Whether a setting (or header, or query parameter) named ``key`` holds a secret."""
    return key not in _NOT_SECRET and bool(_SECRET_KEY.search(key))


def _is_secret_param(name: str) -> bool:
    return name.lower() in _SECRET_PARAMS or is_secret_key(name)


def _mask_param(match: re.Match[str]) -> str:
    if not _is_secret_param(match["name"]):
        return match[0]
    return f"{match['lead']}{match['name']}={MASK}"


def remember(*values: Any) -> None:
    """Mask these values wherever they appear from now on (strings of at least
    :data:`MIN_KNOWN_LENGTH` characters; shorter or non-string values are ignored)."""
    global _known_forms
    # "Bearer <token>", "session=<id>; theme=dark": the credential parts on their own too
    parts = [
        part.split("=", 1)[-1]
        for value in values
        if isinstance(value, str)
        for part in re.split(r"[\s;,]+", value)
    ]
    with _known_lock:
        new = {
            value.strip()
            for value in [*values, *parts]
            if isinstance(value, str) and len(value.strip()) >= MIN_KNOWN_LENGTH
        } - _known
        if new:
            _known.update(new)
            forms = {form for secret in _known for form in _variants(secret)}
            _known_forms = sorted(forms, key=len, reverse=True)


def secrets_in(value: Any, key: str = "", options: bool = False) -> list[str]:
    """The secret values of a settings tree: under secret-looking keys, and the passwords
    and secret query values inside any URL string in it. A bare ``key`` counts only in
    ``storage_options`` (s3fs's access key); elsewhere it names things (a toleration's
    key, a Secret's key)."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            name = str(k)
            if name in _NOT_SECRET:  # names of a Kubernetes Secret and its keys
                continue
            if key and _names_a_secret(key, options):
                name = key  # everything under a secret is secret
            found += secrets_in(v, name, options or name == "storage_options")
        return found
    if isinstance(value, list | tuple):
        for v in value:
            found += secrets_in(v, key, options)
        return found
    if isinstance(value, str):
        if key and _names_a_secret(key, options):
            found.append(value)
        found += _secrets_of_urls(value)
    return found


def _names_a_secret(key: str, options: bool) -> bool:
    return is_secret_key(key) and (options or key.lower() != "key")


def _secrets_of_urls(text: str) -> list[str]:
    found = []
    for match in re.finditer(r"://([^/?#\s'\"<>]+)@", text):
        user, _, password = match[1].partition(":")
        found.append(urllib.parse.unquote(password or user))
    for match in _QUERY_PARAM.finditer(text):
        if _is_secret_param(match["name"]):
            found.append(urllib.parse.unquote(match["value"]))
    return found


def remember_settings(settings: Any) -> None:
    """Mask the secret values of a settings tree everywhere (see :func:`secrets_in`)."""
    remember(*secrets_in(settings))


def remember_environment(environ: Mapping[str, str] | None = None) -> None:
    """Mask the values of secret-looking environment variables everywhere
    (``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``*_PASSWORD``, ``*_API_KEY``...;
    not ``*_FILE``/``*_PATH``/``*_URL`` names, nor the paths of ``*CREDENTIALS`` files such
    as ``GOOGLE_APPLICATION_CREDENTIALS``). A secret's value is masked even when it starts
    with ``/``: one AWS secret key in 64 does."""
    global _environment_read
    environ = os.environ if environ is None else environ
    remember(
        *(
            value
            for name, value in environ.items()
            if _SECRET_ENV.search(name)
            and not _NOT_SECRET_ENV.search(name)
            and not (_names_a_file(name) and value.startswith(("/", "~", ".")))
            and not value.isdigit()
            and " " not in value.strip()
        )
    )
    _environment_read = True


def _names_a_file(name: str) -> bool:
    """An environment variable that may hold the path of a credentials file (not a secret
    itself): ``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_CREDENTIALS``..."""
    return "credential" in name.lower() and not re.search(
        r"secret|passw|token|private_key|api_?key|access_key", name, re.IGNORECASE
    )


def _variants(secret: str) -> set[str]:
    """How a secret may be written out: as is, URL-quoted, HTML- or JSON-escaped."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    forms.add(html.escape(secret))
    forms.add(secret.replace("\\", "\\\\").replace('"', '\\"'))
    return {form for form in forms if form}


def redact_text(text: str) -> str:
    """``text`` with every secret masked: URL user information, secret query parameters,
    credential headers written out, and every known secret value (:func:`remember`)."""
    if not isinstance(text, str) or not text:
        return text
    if not _environment_read:
        remember_environment()
    text = _URL_USERINFO.sub(rf"\1{MASK}@", text)
    text = _QUERY_PARAM.sub(_mask_param, text)
    text = _HEADER.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", text)
    for form in _known_forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def redact(value: Any, key: str = "") -> Any:
    """A copy of a plain settings tree (mappings, lists, scalars) with secrets masked:
    everything under a secret-looking key (a whole mapping too), and every string as
    :func:`redact_text`. Empty values stay as they are, so "not set" still shows."""
    if key and is_secret_key(key) and value not in (None, "", {}, []):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_urls(value: Any) -> Any:
    """A copy of a plain tree with every string masked as :func:`redact_text` (for
    records such as the manifest, whose other keys are not settings)."""
    if isinstance(value, Mapping):
        return {k: redact_urls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_urls(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def mask_exception(exc: BaseException) -> BaseException:
    """Mask, in place, the messages of ``exc`` and of the exceptions it was raised from
    (``__cause__``/``__context__``), so a traceback shown by Jupyter or by the caller's
    own handler holds no secret (:func:`gagebench.run` raises through this). Only string
    arguments (and an ``OSError``'s file names) change; the types stay as they are."""
    seen: set[int] = set()
    current: BaseException | None = exc
    pending = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        with contextlib.suppress(Exception):  # an exception type that refuses new args
            args = tuple(redact_text(a) if isinstance(a, str) else a for a in current.args)
            if args != current.args:
                current.args = args
            if isinstance(current, OSError):
                for name in ("filename", "filename2", "strerror"):
                    value = getattr(current, name, None)
                    if isinstance(value, str) and redact_text(value) != value:
                        setattr(current, name, redact_text(value))
        pending += [current.__cause__, current.__context__]  # type: ignore[list-item]
    return exc


# --------------------------------------------------------------------------- the edges


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask a log record in place: its message (arguments merged in), its traceback (as
    ``exc_text``, which formatters print instead of formatting ``exc_info`` again), its
    stack and string extras."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it itself
        return record
    record.msg, record.args = redact_text(message), None
    if record.exc_info and record.exc_info[0] is not None:
        formatted = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = redact_text(formatted)
    elif record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    for name, value in list(record.__dict__.items()):
        if name not in _RECORD_ATTRS and isinstance(value, str):
            setattr(record, name, redact_text(value))
    return record


_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)


class MaskingFilter(logging.Filter):
    """A logging filter that masks each record (for handlers of one's own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


class MaskedStream:
    """A text stream that masks what is written to it (the CLI's stdout and stderr)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact_text(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_installed = False


def install() -> None:
    """Mask every log record, warning and uncaught traceback of this process (idempotent).

    A log record factory (every logger and handler, present and future), a wrapper of
    :func:`warnings.showwarning` (also when :func:`logging.captureWarnings` routes them),
    and :data:`sys.excepthook` / :data:`threading.excepthook` (a bug's traceback is still
    shown, masked).
    """
    global _installed
    if _installed:
        return
    _installed = True
    remember_environment()
    previous_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(previous_factory(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _wrap_showwarning()
    previous_hook = sys.excepthook

    def excepthook(kind: Any, exc: Any, tb: Any) -> None:
        sys.stderr.write(redact_text("".join(traceback.format_exception(kind, exc, tb))))

    if previous_hook is sys.__excepthook__:
        sys.excepthook = excepthook

    def thread_hook(args: Any) -> None:
        if args.exc_type is SystemExit:
            return
        name = getattr(args.thread, "name", "?")
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_tb))
        sys.stderr.write(redact_text(f"Exception in thread {name}:\n{text}"))

    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = thread_hook


def _wrap_showwarning() -> None:
    previous = warnings.showwarning

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        previous(redact_text(str(message)), category, filename, lineno, file, line)

    showwarning.masked = True  # type: ignore[attr-defined]
    if not getattr(previous, "masked", False):
        warnings.showwarning = showwarning


@contextlib.contextmanager
def masked_streams() -> Iterator[None]:
    """stdout and stderr masked for the block (the CLI), restored afterwards."""
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, MaskedStream):
        sys.stdout = MaskedStream(sys.stdout)
    if not isinstance(sys.stderr, MaskedStream):
        sys.stderr = MaskedStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
