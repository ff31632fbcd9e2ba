"""Operator logs: one `key=value` line per event, with every secret-shaped string redacted.

The redaction filter sits on the handler, so even a careless log call cannot print a token, an API key
or a password-bearing URL.
"""

from __future__ import annotations

import logging
import re

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


def configure(level: str) -> None:
    logger = logging.getLogger("server")
    logger.setLevel(level)
    if any(isinstance(f, RedactingFilter) for h in logger.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.propagate = False
