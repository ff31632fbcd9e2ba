"""Operator logs: one `key=value` line per event (or, with CODEX_LB_LOG_FORMAT=json, one JSON object
whose `key=value` pairs are fields), with every secret-shaped string redacted and no value able to
forge a line or a field.

The filter sits on every handler, so even a careless log call cannot print a token, an API key or a
password-bearing URL, nor a client's or a dashboard user's newline, NUL or terminal escape.
"""

from __future__ import annotations

import functools
import logging
import re
import time

import orjson
from sanic.log import LOGGING_CONFIG_DEFAULTS

from server.runtime.control_characters import escape, escape_within_lines, has_control_characters

_SECRET_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWTs (access/id tokens)
    re.compile(r"sk-clb-[A-Za-z0-9_-]+"),  # our API keys
    re.compile(r"sk-[A-Za-z0-9_-]{20,}"),  # OpenAI-style keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(refresh_token[\"']?\s*[:=]\s*[\"']?)[^\"'\s,&]+"),
    re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"),  # passwords in URLs
)


def _masked(match: re.Match) -> str:
    groups = match.groups()
    if not groups:
        return "***"
    return groups[0] + "***" + (groups[1] if len(groups) > 1 else "")


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_masked, text)
    return text


class SafeLineFilter(logging.Filter):
    """Redacts secrets; writes a `key=%s` value holding a space, a quote or a control character as a JSON
    string, one token for a reader and for the JSON format's pair parser; escapes control characters in
    other values. The record's own line breaks (a banner, a traceback) stay, each next line indented:
    only a record's first line starts at column 0, so no value can pass for a line of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple) and isinstance(record.msg, str):
            record.args = _safe_args(record.msg, record.args)
        message = record.getMessage()
        cleaned = _indented(escape_within_lines(redact(message)))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Text formatters print exc_text when set: the traceback redacted, escaped and indented too.
            traceback = _TRACEBACK.formatException(record.exc_info)
            record.exc_text = "  " + _indented(escape_within_lines(redact(traceback)))
        return True


_TRACEBACK = logging.Formatter()
# A %-format's conversions; `%(name)s` and `*` widths are too rare here to map, and are left alone.
_CONVERSION = re.compile(r"%(?:%|\(|[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa])")
_BARE_VALUE = re.compile(r'[^\s"\x00-\x1f\x7f-\x9f\u2028\u2029]+')  # no space, quote or control


@functools.lru_cache(maxsize=1024)
def _arg_kinds(fmt: str) -> tuple[str, ...] | None:
    """For each argument of a %-format: "pair" (it fills `key=%s`), "text" (any other %s) or "" (a
    number's conversion, or %r, which escapes by itself); None when the format cannot be mapped."""
    kinds = []
    for match in _CONVERSION.finditer(fmt):
        spec, start = match.group(), match.start()
        if spec == "%%":
            continue
        if spec == "%(" or "*" in spec:
            return None
        if spec[-1] != "s":
            kinds.append("")
        elif fmt[start - 1 : start] == "=" and re.match(r"\w", fmt[start - 2 : start - 1]):
            kinds.append("pair")
        else:
            kinds.append("text")
    return tuple(kinds)


def _safe_args(fmt: str, args: tuple) -> tuple:
    kinds = _arg_kinds(fmt)
    if kinds is None or len(kinds) != len(args):
        return args  # getMessage() will complain as it would have; the message is still escaped whole
    safe = list(args)
    for index, (kind, value) in enumerate(zip(kinds, args, strict=True)):
        if not kind or isinstance(value, int | float):
            continue
        text = str(value)
        if kind == "pair" and not _BARE_VALUE.fullmatch(text):
            safe[index] = orjson.dumps(text).decode()  # a JSON string escapes its control characters
        elif has_control_characters(text):
            safe[index] = escape(text)
    return tuple(safe)


def _indented(text: str) -> str:
    return text.replace("\n", "\n  ") if "\n" in text else text


# key=value pairs of a message; a value is a bare word or a JSON string (the access line's reason).
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, the message, and each `key=value` pair as a field
    (numbers as numbers), so a log shipper needs no parsing rules for the access line."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": message,
        }
        head = message.split(" ", 1)[0]
        if "=" not in head:
            line["event"] = head
        for key, value in _PAIR.findall(message):
            if key not in line:
                line[key] = _field(value)
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(line).decode()


def _field(value: str) -> object:
    if value.startswith('"'):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if value == "-":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Set by configure(): the start-up notes (server/runtime/startup.py) follow the chosen format too.
json_lines = False


def sanic_log_config(log_format: str) -> dict:
    """Sanic's own logging set-up (its start-up, error and websocket lines) with our SafeLineFilter on
    every handler and, in JSON mode, our JSON lines, so a log shipper sees one format from the whole
    process."""
    # One level deeper than a shallow copy: the handlers hold the process's streams, which can't be copied.
    config = {
        key: ({name: dict(entry) for name, entry in value.items()} if isinstance(value, dict) else value)
        for key, value in LOGGING_CONFIG_DEFAULTS.items()
    }
    config.setdefault("filters", {})["safe_line"] = {"()": SafeLineFilter}
    if log_format == "json":
        for formatter in config["formatters"].values():
            formatter.clear()
            formatter["()"] = JsonFormatter
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", ()), "safe_line"]
    return config


def configure(level: str, log_format: str = "text") -> None:
    global json_lines
    json_lines = log_format == "json"
    logger = logging.getLogger("server")
    logger.setLevel(level)
    if any(isinstance(f, SafeLineFilter) for h in logger.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(SafeLineFilter())
    logger.addHandler(handler)
    logger.propagate = False
