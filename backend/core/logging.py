"""Logging without personal data: query strings (which may carry a caller's number or national ID
as ownership proof) never reach the access log."""

from __future__ import annotations

import logging


class RedactQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            path = record.args[2]
            if "?" in path:
                args = list(record.args)
                args[2] = path.split("?", 1)[0] + "?[redacted]"
                record.args = tuple(args)
        return True


def uvicorn_log_config() -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = {**LOGGING_CONFIG, "filters": {"redact": {"()": "backend.core.logging.RedactQueryStrings"}}}
    config["handlers"] = {name: dict(handler) for name, handler in LOGGING_CONFIG["handlers"].items()}
    config["handlers"]["access"]["filters"] = ["redact"]
    return config
