"""The citizens' web (issue 12, R18, R5, R17, R7): filing with an SMS-proved number, the code's limits,
the honeypot and rate limits, the evidence link, the status page that answers the owner only."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from sqlalchemy import select

from backend.models import Attachment, Case, CaseEvent, EvidenceToken, OutboundMessage, PhoneChallenge
from domain.digits import to_persian_digits
from domain.national_id import with_check_digit
from tests.backend.console.conftest import staff  # noqa: F401

NID = with_check_digit("001354241")
MOBILE = "09121234567"
START = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 200

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HANDLE = re.compile(r'name="handle" value="([^"]+)"')
CODE_IN_SMS = re.compile(r"کد تأیید شما (\d{6})")
LINK = re.compile(r"https?://\S+/e/([A-Za-z0-9_-]+)")


@pytest.fixture
def clock(client):
    from backend.api.deps import get_now

    class Clock:
        now = START

    c = Clock()
    client.app.dependency_overrides[get_now] = lambda: c.now
    yield c
    client.app.dependency_overrides.clear()


def fresh(db):
    db.rollback()  # a fresh snapshot: the app committed in its own session
    return db


def csrf(client, path: str = "/") -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return CSRF.search(r.text).group(1)


def last_code(db) -> str:
    db.rollback()  # a fresh snapshot: the app committed in its own session
    body = db.scalars(
        select(OutboundMessage.body)
        .where(OutboundMessage.dedupe_key.like("web-code:%"))
        .order_by(OutboundMessage.id.desc())
    ).first()
    return CODE_IN_SMS.search(body).group(1)


def ask_code(client, mobile: str = MOBILE, service: str = "1482", **extra) -> tuple[str, object]:
    token = csrf(client)
    r = client.post("/file/code", data={"csrf": token, "service": service, "mobile": mobile, **extra})
    return token, r


def filing(token: str, handle: str, code: str, **overrides) -> dict[str, str]:
    data = {
        "csrf": token,
        "service": "1482",
        "handle": handle,
        "code": code,
        "kind": "complaint",
        "category": "mistreatment",
        "description": "در مرکز با سالمندان بدرفتاری می‌شود.",
        "national_id": NID,
    }
    data.update(overrides)
    return data


def file_case(client, db, files=None, **overrides):
    token, r = ask_code(client)
    assert r.status_code == 200, r.text
    handle = HANDLE.search(r.text).group(1)
    r = client.post("/file", data=filing(token, handle, last_code(db), **overrides), files=files)
    db.rollback()
    return r


def test_filing_makes_a_web_case_and_an_sms_with_its_code_and_evidence_link(client, db, clock, caplog):
    caplog.set_level(logging.DEBUG)
    r = file_case(client, db, files=[("files", ("nid-0013542412.png", PNG, "image/png"))])
    assert r.status_code == 201, r.text
    case = db.scalars(select(Case)).one()
    assert case.channel == "web" and case.kind == "complaint" and case.category == "mistreatment"
    assert to_persian_digits(case.tracking_code) in r.text
    # The number proved by the code is the case's own; the identity is stored encrypted.
    assert case.phone_hash and case.caller.national_id_hash
    registered = db.scalar(select(OutboundMessage).where(OutboundMessage.dedupe_key.like("%:registered")))
    assert " ".join(to_persian_digits(case.tracking_code)) in registered.body
    token = LINK.search(registered.body).group(1)
    row = db.scalar(select(EvidenceToken).where(EvidenceToken.case_id == case.id))
    assert row.token_hash != token and len(row.token_hash) == 64  # stored hashed
    # The attachment sent with the form: stored under a random name, shown under a neutral one.
    attachment = db.scalars(select(Attachment)).one()
    assert re.fullmatch(rf"{case.id}/[0-9a-f]{{32}}\.png", attachment.path)
    assert NID not in attachment.filename and attachment.content_type == "image/png"
    events = [e.action for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
    assert events == ["register", "attach"]
    # The challenge is spent: the same code cannot file again.
    assert db.scalars(select(PhoneChallenge)).one().used_at is not None
    # Neither the national ID nor the number reaches a log line.
    assert NID not in caplog.text and MOBILE not in caplog.text


def test_the_phone_registration_sms_carries_the_evidence_link_too(client, db, ivr_headers):
    body = {
        "service": "1482",
        "kind": "complaint",
        "urgent": False,
        "national_id": NID,
        "caller_number": MOBILE,
        "channel": "phone",
        "call_id": "1700000000.9",
    }
    assert client.post("/api/v1/cases", json=body, headers=ivr_headers).status_code == 201
    sms = db.scalar(select(OutboundMessage.body).where(OutboundMessage.dedupe_key.like("%:registered")))
    assert LINK.search(sms)


def test_a_bad_national_id_is_refused_and_does_not_spend_the_code(client, db, clock):
    token, r = ask_code(client)
    handle = HANDLE.search(r.text).group(1)
    code = last_code(db)
    bad = NID[:9] + str((int(NID[9]) + 1) % 10)
    r = client.post("/file", data=filing(token, handle, code, national_id=bad))
    assert r.status_code == 422 and "کد ملی درست نیست" in r.text
    assert fresh(db).scalar(select(Case)) is None
    r = client.post("/file", data=filing(token, handle, code))
    assert r.status_code == 201
    db.rollback()


def test_wrong_codes_are_counted_and_the_fifth_ends_the_code(client, db, clock):
    token, r = ask_code(client)
    handle = HANDLE.search(r.text).group(1)
    right = last_code(db)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    for attempt in range(1, 5):
        r = client.post("/file", data=filing(token, handle, wrong))
        assert r.status_code == 422 and "کد تأیید درست نیست" in r.text, attempt
    r = client.post("/file", data=filing(token, handle, wrong))
    assert "تلاش‌های نادرست زیاد بود" in r.text
    # Even the right code is refused now.
    r = client.post("/file", data=filing(token, handle, right))
    assert r.status_code == 422 and "تلاش‌های نادرست زیاد بود" in r.text
    assert fresh(db).scalar(select(Case)) is None


def test_a_code_expires_after_ten_minutes(client, db, clock):
    token, r = ask_code(client)
    handle = HANDLE.search(r.text).group(1)
    clock.now = START + dt.timedelta(minutes=10, seconds=1)
    r = client.post("/file", data=filing(token, handle, last_code(db)))
    assert r.status_code == 422 and "منقضی" in r.text
    assert fresh(db).scalar(select(Case)) is None


def test_the_honeypot_refuses_and_sends_nothing(client, db):
    _, r = ask_code(client, website="http://spam.example")
    assert r.status_code == 400
    assert fresh(db).scalar(select(OutboundMessage)) is None


def test_a_form_without_its_csrf_cookie_is_refused(client, db):
    token = csrf(client)
    client.cookies.clear()
    r = client.post("/file/code", data={"csrf": token, "service": "1482", "mobile": MOBILE})
    assert r.status_code == 403
    assert fresh(db).scalar(select(OutboundMessage)) is None


def test_only_mobile_numbers_get_a_code(client, db):
    _, r = ask_code(client, mobile="02188776655")
    assert r.status_code == 422 and "شماره همراه درست نیست" in r.text
    assert fresh(db).scalar(select(OutboundMessage)) is None


def test_codes_are_rate_limited_per_number_and_per_address(client, db):
    for _ in range(3):
        assert ask_code(client)[1].status_code == 200
    _, r = ask_code(client)  # a fourth code for one number within ten minutes
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "زیاد بود" in r.text
    # Another number from the same address still gets one, up to the address's five.
    assert ask_code(client, mobile="09351112233")[1].status_code == 200
    assert ask_code(client, mobile="09351112244")[1].status_code == 200
    assert ask_code(client, mobile="09351112255")[1].status_code == 429
    assert len(fresh(db).scalars(select(OutboundMessage)).all()) == 5


def _evidence_token(db) -> str:
    db.rollback()  # a fresh snapshot: the app committed in its own session
    sms = db.scalar(select(OutboundMessage.body).where(OutboundMessage.dedupe_key.like("%:registered")))
    return LINK.search(sms).group(1)


def test_evidence_link_checks_type_and_size_and_works_once(client, db, clock, settings_env):
    assert file_case(client, db).status_code == 201
    token = _evidence_token(db)
    page = client.get(f"/e/{token}")
    assert page.status_code == 200 and "افزودن مدرک" in page.text
    form = {"csrf": CSRF.search(page.text).group(1)}
    # A text file named .png is refused by its content; the link stays usable.
    text = [("files", ("a.png", b"hello, not an image", "image/png"))]
    r = client.post(f"/e/{token}", data=form, files=text)
    assert r.status_code == 422 and "فقط تصویر" in r.text
    too_big = PNG + b"\0" * (10 * 1024 * 1024)
    r = client.post(f"/e/{token}", data=form, files=[("files", ("b.png", too_big, "image/png"))])
    assert r.status_code == 422 and "۱۰ مگابایت" in r.text
    assert fresh(db).scalar(select(Attachment)) is None
    files = [("files", ("photo.png", PNG, "image/png")), ("files", ("doc.pdf", b"%PDF-1.4\n...", "x/y"))]
    r = client.post(f"/e/{token}", data=form, files=files)
    assert r.status_code == 200 and "۲ فایل" in r.text
    db.rollback()  # a fresh snapshot: the app committed in its own session
    attachments = db.scalars(select(Attachment)).all()
    assert [a.content_type for a in attachments] == ["image/png", "application/pdf"]
    for a in attachments:  # stored under the data folder, outside anything served
        assert (settings_env / "var" / "attachments" / a.path).is_file()
    events = db.scalars(select(CaseEvent).where(CaseEvent.action == "attach")).all()
    assert len(events) == 2 and {e.actor for e in events} == {"citizen"}
    # Used once: the link is dead, for the form and the page alike.
    assert client.post(f"/e/{token}", data=form, files=files).status_code == 404
    assert client.get(f"/e/{token}").status_code == 404
    assert client.get("/e/not-a-token").status_code == 404


def test_an_evidence_link_expires_after_thirty_days(client, db, clock):
    assert file_case(client, db).status_code == 201
    token = _evidence_token(db)
    clock.now = START + dt.timedelta(days=30, seconds=1)
    assert client.get(f"/e/{token}").status_code == 404


def _answered_case(client, db) -> Case:
    assert file_case(client, db).status_code == 201
    case = db.scalars(select(Case)).one()
    case.answer = "پاسخ: بازرسی انجام شد و مسئول مرکز تذکر گرفت."
    db.add(
        CaseEvent(
            case=case,
            at=START,
            action="screen",
            to_status="screened",
            actor="operator-ali",
            note="یادداشت درونی",
        )
    )
    db.commit()
    return case


def status(client, **data):
    token = csrf(client, "/status")
    return client.post("/status", data={"csrf": token, **data})


def test_status_shows_the_stage_to_anyone_and_the_answer_to_the_owner_only(client, db, clock):
    case = _answered_case(client, db)
    stranger = status(client, tracking_code=case.tracking_code, via="nid")
    assert stranger.status_code == 200 and 'id="stage"' in stranger.text
    assert case.answer not in stranger.text
    other = with_check_digit("123456789")
    wrong = status(client, tracking_code=case.tracking_code, national_id=other, via="nid")
    assert case.answer not in wrong.text and "کد ملی با این پرونده نمی‌خواند" in wrong.text
    owner = status(client, tracking_code=case.tracking_code, national_id=NID, via="nid")
    assert case.answer in owner.text
    # The history says what was done, never by whom, and no internal note.
    for page in (stranger, owner):
        assert "operator-ali" not in page.text and "یادداشت درونی" not in page.text
        assert NID not in page.text and MOBILE not in page.text
    assert status(client, tracking_code="1012345678", via="nid").status_code in (404, 422)


def test_status_by_an_sms_code_to_the_cases_number(client, db, clock):
    case = _answered_case(client, db)
    r = status(client, tracking_code=case.tracking_code, via="sms")
    assert r.status_code == 200 and MOBILE not in r.text
    challenge = fresh(db).scalars(select(PhoneChallenge).where(PhoneChallenge.purpose == "status")).one()
    assert challenge.case_id == case.id
    handle, token = HANDLE.search(r.text).group(1), CSRF.search(r.text).group(1)
    wrong = f"{(int(last_code(db)) + 1) % 10**6:06d}"
    r = client.post("/status/code", data={"csrf": token, "handle": handle, "code": wrong})
    assert r.status_code == 422 and case.answer not in r.text
    r = client.post("/status/code", data={"csrf": token, "handle": handle, "code": last_code(db)})
    assert r.status_code == 200 and case.answer in r.text
    # Spent: the same code shows nothing again.
    r = client.post("/status/code", data={"csrf": token, "handle": handle, "code": last_code(db)})
    assert r.status_code == 422 and case.answer not in r.text


def test_citizen_pages_carry_a_strict_content_security_policy(client, db):
    r = client.get("/")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in r.text


@pytest.mark.usefixtures("staff")
def test_the_staff_holding_the_case_see_the_citizens_evidence(client, db, clock):
    from tests.backend.console.conftest import console_login

    assert file_case(client, db).status_code == 201
    token = _evidence_token(db)
    page = client.get(f"/e/{token}")
    form = {"csrf": CSRF.search(page.text).group(1)}
    assert (
        client.post(f"/e/{token}", data=form, files=[("files", ("x.png", PNG, "image/png"))]).status_code
        == 200
    )
    case = fresh(db).scalars(select(Case)).one()
    attachment = db.scalars(select(Attachment)).one()
    console_login(client, "op")  # the operators of the national office hold a new case
    r = client.get(f"/console/cases/{case.tracking_code}")
    assert r.status_code == 200 and f"/console/attachments/{attachment.id}" in r.text
    assert NID not in r.text and MOBILE not in r.text
    served = client.get(f"/console/attachments/{attachment.id}")
    assert served.status_code == 200 and served.content == PNG
