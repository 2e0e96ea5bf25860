"""Each role at work in a real browser (issue 10): an operator screens and refers a case filed
through the IVR's route, the centre answers, the managers approve up to closure and the caller's SMS
land in the SMS file; the audio plays (Range requests answered 206); a supervisor finds the call by
its code and plays it; the administrator's pages; a screenshot of every page at two widths."""

from __future__ import annotations

import datetime as dt
import io
import math
import struct
import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from backend.models import CallLog, Case, Recording
from tests.backend.api.test_cases import NID, PHONE
from tests.browser.conftest import DESKTOP, shoot
from tests.factories import add_staff

pytestmark = pytest.mark.browser
PASSWORD = "demo-password-1482"
STAFF = [
    ("operator1482", "operator", "1482-hq"),
    ("khorasan", "manager", "1482-khr"),
    ("mashhad", "manager", "1482-khr-mashhad"),
    ("omid", "manager", "1482-khr-mashhad-c01"),
    ("supervisor", "supervisor", None),
    ("admin", "admin", None),
]


def tone_wav(seconds: float = 2.0, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
            for i in range(int(seconds * rate))
        )
        w.writeframes(frames)
    return out.getvalue()


@pytest.fixture
def people(db):
    add_staff(db, STAFF, PASSWORD, dt.datetime.now(dt.UTC))


CALL_ID = "1763900000.42"


def file_by_fastagi(base: str, settings_env, monkeypatch, canned: Path, db) -> tuple[str, str]:
    """A new-case call on 1482 through the FastAGI server against the live backend; returns the
    tracking code the caller heard and the message recording's path as the case stores it."""
    import asyncio
    import threading

    from cryptography.fernet import Fernet

    from ivr.fastagi import HotlineServer
    from ivr.phone import AsteriskSide, Script, environment
    from tests.conftest import clear_caches

    monkeypatch.setenv("DIDEHBAN_BACKEND_URL", base)
    monkeypatch.setenv("DIDEHBAN_NODE_PREFIX", "21")
    monkeypatch.setenv("DIDEHBAN_SPOOL_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("DIDEHBAN_PROMPTS_DIR", str(settings_env / "prompts"))
    clear_caches()

    async def call() -> None:
        server = HotlineServer()
        await server.start("127.0.0.1", 0)
        try:
            side = AsteriskSide(
                Script(["1", "1", "2", f"{NID}#", "1", "words", "3", ""]), canned_recording=canned
            )
            env = environment(
                route="hotline", service="1482", caller=PHONE, unique_id=CALL_ID, port=server.port
            )
            await asyncio.wait_for(side.call("127.0.0.1", server.port, env), 60)
            # The node may hand the case over after the call: wait until the backend has it.
            for _ in range(200):
                db.expire_all()
                if db.scalar(select(Case).where(Case.call_id == CALL_ID)) is not None:
                    return
                await asyncio.sleep(0.1)
        finally:
            await server.stop()

    # Playwright's sync API keeps an event loop on this thread: the call runs on its own.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(call())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(120)
    assert not errors, errors
    case = db.scalar(select(Case).where(Case.call_id == CALL_ID))
    assert case is not None, "the FastAGI call filed no case"
    message = db.scalar(select(Recording).where(Recording.case_id == case.id, Recording.kind == "message"))
    assert message is not None and (settings_env / "recordings" / message.path).exists()
    return case.tracking_code, message.path


def login(page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/console/login")
    page.get_by_label("نام کاربری").fill(username)
    page.get_by_label("گذرواژه").fill(PASSWORD)
    page.get_by_role("button", name="ورود").click()
    page.wait_for_url(f"{base}/console/")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "fa"


def assert_plays(page, selector: str, ranges: list) -> None:
    """The audio element loads, plays and seeks; the seek is a Range request answered 206."""
    audio = page.locator(selector).first
    audio.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("el => el.currentTime > 0 || el.ended", arg=audio.element_handle(), timeout=15000)
    duration = audio.evaluate("a => a.duration")
    assert 1.5 < duration < 2.5
    audio.evaluate("a => { a.currentTime = 1.2; }")
    page.wait_for_function("el => el.readyState >= 2", arg=audio.element_handle(), timeout=15000)
    assert any(status == 206 for status, _ in ranges), ranges


def test_each_role_does_its_work_in_the_browser(
    chromium, live_server, people, settings_env, db, vault, monkeypatch
):
    base = live_server
    wav = tone_wav()
    folder = settings_env / "recordings" / "1482" / "20261122"
    folder.mkdir(parents=True)
    (folder / "call-1-message.wav").write_bytes(wav)
    calls = settings_env / "recordings" / "calls" / "20261122"
    calls.mkdir(parents=True)
    (calls / "call-1-call.wav").write_bytes(wav)
    # The case is filed by a whole call through the real FastAGI server (Asterisk's side played by
    # ivr.phone over TCP), which hands it to this backend over HTTP, as in production.
    code, message_path = file_by_fastagi(base, settings_env, monkeypatch, folder / "call-1-message.wav", db)
    db.add(
        CallLog(
            unique_id=CALL_ID,
            service="1482",
            caller_hash=vault.lookup_hash(PHONE),
            caller_enc=vault.encrypt(PHONE),
            started_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3),
            duration_seconds=95,
            path="menu:1>kind:1>urgent:2>nid>record>code",
            outcome="filed",
            tracking_code=code,
            message_recording=message_path,
            call_recording="calls/20261122/call-1-call.wav",
        )
    )
    db.commit()

    context = chromium.new_context(viewport=DESKTOP, locale="fa-IR")
    page = context.new_page()
    ranges: list[tuple[int, str]] = []
    page.on(
        "response",
        lambda resp: (
            ranges.append((resp.status, resp.url))
            if "/recordings/" in resp.url or "/console/calls/" in resp.url
            else None
        ),
    )
    seen_html: list[str] = []
    page.on(
        "response",
        lambda resp: (
            seen_html.append(resp.text())
            if resp.headers.get("content-type", "").startswith("text/html")
            else None
        ),
    )

    page.goto(f"{base}/console/login")
    shoot(page, "login")

    # --- the operator: the screening queue, the message, the transcript, screening, referral.
    login(page, base, "operator1482")
    queue = page.get_by_role("region", name="صف غربال")
    assert queue.get_by_role("link").count() == 1
    shoot(page, "operator-inbox")
    queue.get_by_role("link").first.click()
    page.wait_for_url(f"{base}/console/cases/{code}")
    assert_plays(page, "audio", ranges)
    page.get_by_label("متن پیام (نوشته اپراتور)").fill("مادری می‌گوید در مرکز با کودکش بدرفتاری شده است.")
    page.get_by_role("button", name="ذخیره متن").click()
    page.wait_for_url(f"**/console/cases/{code}?done=transcript")
    page.get_by_label("دسته").select_option("mistreatment")
    page.get_by_label("فوری").check()
    page.get_by_role("button", name="ثبت غربال").click()
    page.wait_for_url("**done=screen")
    assert page.get_by_text("غربال ثبت شد.").is_visible()
    shoot(page, "operator-case")
    page.get_by_label("واحد", exact=True).select_option("1482-khr")
    page.get_by_role("button", name="ارجاع", exact=True).click()
    page.wait_for_url("**done=refer")
    assert page.get_by_text("فقط خواندنی").is_visible()  # the province holds it now
    page.goto(f"{base}/console/cases/new")
    shoot(page, "operator-new-case")

    # --- down the tree: the province and the county refer, the centre answers.
    for username, unit in (("khorasan", "1482-khr-mashhad"), ("mashhad", "1482-khr-mashhad-c01")):
        login(page, base, username)
        page.get_by_role("link", name=code_fa(code)).click()
        page.get_by_label("واحد", exact=True).select_option(unit)
        page.get_by_label("یادداشت برای واحد").fill("لطفاً فوری بررسی شود.")
        page.get_by_role("button", name="ارجاع", exact=True).click()
        page.wait_for_url("**done=refer")
    login(page, base, "omid")
    shoot(page, "centre-inbox")
    page.get_by_role("link", name=code_fa(code)).click()
    page.get_by_label("متن پاسخ").fill("مرکز بازرسی شد و مربی خاطی از کار برکنار شد.")
    page.get_by_role("button", name="ثبت پاسخ").click()
    page.wait_for_url("**done=answer")

    # --- and up: the county and the province approve, the operator closes.
    for username in ("mashhad", "khorasan"):
        login(page, base, username)
        page.get_by_role("link", name=code_fa(code)).click()
        page.get_by_role("button", name="تأیید", exact=True).click()
        page.wait_for_url("**done=approve")
    login(page, base, "operator1482")
    page.goto(f"{base}/console/cases/{code}")
    page.get_by_role("button", name="تأیید نهایی").click()
    page.wait_for_url("**done=approve")
    assert page.get_by_text("پاسخ نهایی داده شده و بسته شده").first.is_visible()
    shoot(page, "closed-case")

    # The caller's SMS: the outbox delivers to the SMS file (the demo's phone).
    from backend.core.config import get_settings
    from backend.core.db import get_sessionmaker
    from backend.notifications.outbox import deliver_due
    from backend.notifications.senders import sender_from_settings

    settings = get_settings()
    deliver_due(
        get_sessionmaker(), sender_from_settings(settings), vault, dt.datetime.now(dt.UTC) + dt.timedelta(1)
    )
    sms = settings.sms_file.read_text(encoding="utf-8")
    for stage in ("ثبت شد", "ارجاع شد", "پاسخ ثبت شد", "بسته شد"):
        assert stage in sms, stage

    # --- the supervisor: the call by its code, both recordings play; scores and the lists.
    login(page, base, "supervisor")
    page.goto(f"{base}/console/calls")
    page.get_by_label("کد رهگیری").fill(code)
    page.get_by_role("button", name="نمایش").click()
    page.wait_for_url("**/console/calls?**")
    rows = page.locator("table.calls tbody tr")
    assert rows.count() == 1
    ranges.clear()
    assert_plays(page, "table.calls audio", ranges)
    shoot(page, "supervisor-calls")
    rows.first.get_by_role("link", name=code_fa(code)).click()
    page.wait_for_url(f"{base}/console/cases/{code}")
    for path, name in (
        ("/console/scores", "scores"),
        ("/console/escalations", "escalations"),
        ("/console/returned", "returned"),
        ("/console/", "supervisor-inbox"),
    ):
        page.goto(base + path)
        shoot(page, name)

    # --- the administrator: users, units, holidays (with the Jalali date picker).
    login(page, base, "admin")
    for path, name in (
        ("/console/admin/users", "admin-users"),
        ("/console/admin/units", "admin-units"),
        ("/console/admin/holidays", "admin-holidays"),
    ):
        page.goto(base + path)
        shoot(page, name)
    page.get_by_label("تاریخ", exact=True).click()
    picker = page.get_by_role("dialog", name="انتخاب تاریخ شمسی")
    assert picker.is_visible()
    picker.get_by_role("button").nth(5).click()
    assert page.get_by_label("تاریخ", exact=True).input_value().startswith(("۱۴", "۱۳"))

    # Logout ends the session: the case page now asks to log in.
    page.goto(f"{base}/console/")
    page.get_by_role("button", name="خروج").click()
    page.goto(f"{base}/console/cases/{code}")
    assert "/console/login" in page.url
    context.close()

    # No page the browser received showed the caller's identity.
    assert seen_html
    for html in seen_html:
        assert NID not in html and PHONE not in html


def code_fa(code: str) -> str:
    from domain.digits import to_persian_digits

    return to_persian_digits(code)


def test_clicking_a_draft_word_seeks_the_message_to_it(
    chromium, live_server, people, settings_env, db, ivr_headers
):
    """Issue 11: the speech draft under the player; a click on a word moves the audio to its start."""
    import httpx

    from backend.models import Transcription
    from tests.backend.api.test_cases import new_case

    folder = settings_env / "recordings" / "1482" / "20261122"
    folder.mkdir(parents=True)
    (folder / "draft-message.wav").write_bytes(tone_wav(4.0))
    r = httpx.post(
        f"{live_server}/api/v1/cases",
        json=new_case(recording_path="1482/20261122/draft-message.wav", recording_seconds=4.0),
        headers=ivr_headers,
    )
    assert r.status_code == 201, r.text
    code = r.json()["tracking_code"]
    recording = db.scalar(select(Recording).where(Recording.kind == "message"))
    words = [
        {"word": "سلام", "start": 0.5, "end": 0.9, "conf": 0.97},
        {"word": "آب", "start": 1.25, "end": 1.6, "conf": 0.31},
        {"word": "نیست", "start": 2.7, "end": 3.2, "conf": 0.88},
    ]
    db.add(
        Transcription(
            recording_id=recording.id,
            language="fa",
            status="done",
            text="سلام آب نیست",
            words=words,
            attempts=1,
        )
    )
    db.commit()

    page = chromium.new_context(viewport=DESKTOP, locale="fa-IR").new_page()
    login(page, live_server, "operator1482")
    page.goto(f"{live_server}/console/cases/{code}")
    audio = page.locator(f"#audio-{recording.id}")
    audio.evaluate("a => { a.muted = true; }")
    doubtful = page.get_by_role("button", name="آب", exact=True)
    assert doubtful.get_attribute("class") == "word low" and "اطمینان کم" in doubtful.get_attribute("title")
    assert page.locator("#transcript").input_value() == "سلام آب نیست"
    for word, start in (("نیست", 2.7), ("آب", 1.25)):
        page.get_by_role("button", name=word, exact=True).click()
        # The seek lands on the word's start (playing may move it on a little before we look).
        page.wait_for_function(
            f"el => el.currentTime >= {start} - 0.01 && el.currentTime < {start} + 0.6",
            arg=audio.element_handle(),
            timeout=10000,
        )
    page.wait_for_function("el => !el.paused", arg=audio.element_handle(), timeout=10000)
    shoot(page, "case-draft")
