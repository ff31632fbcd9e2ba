"""Operator logs: one `key=value` line per event (or, with CODEX_LB_LOG_FORMAT=json, one JSON object
whose `key=value` pairs are fields), with every secret-shaped string redacted.

The redaction filter sits on the handler, so even a careless log call cannot print a token, an API key
or a password-bearing URL.
"""

from __future__ import annotations

import logging
import re
import time

import orjson
from sanic.log import LOGGING_CONFIG_DEFAULTS

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


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


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


# Set by configure(): the start-up notes (server/startup.py) follow the chosen format too.
json_lines = False


def sanic_log_config(log_format: str) -> dict:
    """Sanic's own logging set-up (its start-up, error and websocket lines) with our redaction on every
    handler and, in JSON mode, our JSON lines, so a log shipper sees one format from the whole process."""
    # One level deeper than a shallow copy: the handlers hold the process's streams, which can't be copied.
    config = {
        key: ({name: dict(entry) for name, entry in value.items()} if isinstance(value, dict) else value)
        for key, value in LOGGING_CONFIG_DEFAULTS.items()
    }
    config.setdefault("filters", {})["redact"] = {"()": RedactingFilter}
    if log_format == "json":
        for formatter in config["formatters"].values():
            formatter.clear()
            formatter["()"] = JsonFormatter
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", ()), "redact"]
    return config


def configure(level: str, log_format: str = "text") -> None:
    global json_lines
    json_lines = log_format == "json"
    logger = logging.getLogger("server")
    logger.setLevel(level)
    if any(isinstance(f, RedactingFilter) for h in logger.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.propagate = False
