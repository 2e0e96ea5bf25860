"""A citizen on a phone-sized screen (issue 12, R18, R5, R17, R7): files a case on the web with the
code the SMS brought, reads the tracking code, adds a photo through the link of the registration SMS,
and checks the status with the national ID. The SMS are read from the file sender (the demo's phone)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from backend.models import Attachment, Case, CaseEvent
from domain.digits import normalise_digits
from domain.national_id import with_check_digit
from tests.browser.conftest import PHONE, SCREENSHOTS

pytestmark = pytest.mark.browser
NID = with_check_digit("001354241")
MOBILE = "09121234567"
# The smallest JPEG header the content check accepts, and a few bytes of body.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\0" * 512


def sms_to_phone(vault) -> list[dict]:
    """Deliver what the outbox holds to the SMS file and read it back."""
    from backend.core.config import get_settings
    from backend.core.db import get_sessionmaker
    from backend.notifications.outbox import deliver_due
    from backend.notifications.senders import sender_from_settings

    settings = get_settings()
    deliver_due(get_sessionmaker(), sender_from_settings(settings), vault, dt.datetime.now(dt.UTC))
    lines = settings.sms_file.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def snap(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"citizen-{name}-phone.png"), full_page=True)


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_citizen_files_adds_a_photo_and_follows_the_case_on_a_phone(
    chromium, live_server, db, vault, settings_env
):
    base = live_server
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="fa-IR")
    page = context.new_page()

    # --- the number first: a code by SMS.
    page.goto(f"{base}/")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert fits_the_screen(page)
    snap(page, "start")
    page.get_by_label("سامانه").select_option("1482")
    page.get_by_label("شماره همراه").fill(MOBILE)
    page.get_by_role("button", name="دریافت کد تأیید").click()
    page.wait_for_url(f"{base}/file/code")
    messages = sms_to_phone(vault)
    assert messages[-1]["to"] == MOBILE
    code = re.search(r"(\d{6})", messages[-1]["text"]).group(1)

    # --- the form, with the code.
    page.get_by_label("کد تأیید پیامک‌شده").fill(code)
    page.get_by_label("نوع").select_option("complaint")
    page.get_by_label("موضوع").select_option("mistreatment")
    page.get_by_label("شرح").fill("در مرکز نگهداری سالمندان با مادرم بدرفتاری شد.")
    page.get_by_label("کد ملی", exact=True).fill(NID)
    assert fits_the_screen(page)
    snap(page, "form")
    page.get_by_role("button", name="ثبت", exact=True).click()
    page.wait_for_url(f"{base}/file")
    assert page.get_by_role("heading", name="درخواست شما ثبت شد").is_visible()
    tracking = normalise_digits(page.locator("#tracking-code").inner_text().strip())
    assert re.fullmatch(r"\d{10}", tracking)
    assert NID not in page.content() and MOBILE not in page.content()
    snap(page, "filed")

    # --- the registration SMS: the code and the evidence link.
    registered = [m for m in sms_to_phone(vault) if "کد رهگیری" in m["text"]]
    assert len(registered) == 1 and registered[0]["to"] == MOBILE
    text = registered[0]["text"]
    assert tracking in normalise_digits(text)  # spaced Persian digits, read back as one number
    path = re.search(r"https?://[^/\s]+(/e/[A-Za-z0-9_-]+)", text).group(1)

    # --- a photo through the link.
    page.goto(f"{base}{path}")
    assert page.get_by_role("heading", name=re.compile("افزودن مدرک")).is_visible()
    page.get_by_label("فایل‌ها").set_input_files(
        files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": JPEG}]
    )
    snap(page, "evidence")
    page.get_by_role("button", name="ارسال مدرک").click()
    assert page.get_by_role("heading", name="مدرک رسید").is_visible()
    # The link was good once.
    page.goto(f"{base}{path}")
    assert page.get_by_text("این پیوند به کار رفته یا منقضی شده است").is_visible()

    db.rollback()
    case = db.scalar(select(Case).where(Case.tracking_code == tracking))
    assert case.channel == "web"
    attachment = db.scalars(select(Attachment).where(Attachment.case_id == case.id)).one()
    assert attachment.content_type == "image/jpeg" and NID not in attachment.path
    assert "attach" in [e.action for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]

    # --- the status, as the owner (the national ID).
    page.goto(f"{base}/status")
    page.get_by_label("کد رهگیری").fill(tracking)
    page.get_by_label("کد ملی (برای دیدن پاسخ)").fill(NID)
    page.get_by_role("button", name="نمایش وضعیت").click()
    page.wait_for_url(f"{base}/status")
    assert page.locator("#stage").inner_text().strip()
    assert page.get_by_role("heading", name="پاسخ").is_visible()
    assert page.get_by_text("هنوز پاسخی داده نشده است").is_visible()
    assert fits_the_screen(page)
    snap(page, "status")
    context.close()
