import logging

from backend.core.logging import RedactQueryStrings


def test_query_strings_never_reach_the_access_log():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/api/v1/cases/1012345678?caller_number=09121234567&national_id=0013542419",
            "1.1",
            200,
        ),
        None,
    )
    assert RedactQueryStrings().filter(record)
    line = record.getMessage()
    assert "0912" not in line and "0013542419" not in line
    assert "/api/v1/cases/1012345678?[redacted]" in line
