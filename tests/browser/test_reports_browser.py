"""Reports in a real browser (issue 12): a supervisor opens a month's report, sees the chart drawn,
downloads the XLSX (opened here with openpyxl); the public page reads "fewer than 5" where it must."""

from __future__ import annotations

import pytest
from openpyxl import load_workbook

from tests.backend.reports.builders import HOUR, make_case, tehran
from tests.browser.conftest import DESKTOP, shoot
from tests.browser.test_console_browser import login, people  # noqa: F401

pytestmark = pytest.mark.browser


def test_a_supervisor_reads_a_months_report_and_the_public_page(chromium, live_server, people, db, tmp_path):  # noqa: F811
    start = tehran(2025, 9, 23, 9, 0)  # Mehr 1404
    for i in range(8):
        make_case(
            db,
            start + i * HOUR,
            unit_code="1482-khr-mashhad-c01",
            category="mistreatment",
            answered_after=HOUR,
        )
    for i in range(3):
        make_case(db, start + i * HOUR, unit_code="1482-khr-neyshabur", kind="request", channel="web")
    db.commit()
    base = live_server
    context = chromium.new_context(viewport=DESKTOP, locale="fa-IR", accept_downloads=True)
    page = context.new_page()
    login(page, base, "supervisor")
    page.get_by_role("link", name="گزارش‌ها").click()
    page.wait_for_url(f"{base}/console/reports")
    page.locator('select[name="period"]').select_option("month")
    page.locator('input[name="date_from"]').fill("۱۴۰۴/۰۷")
    page.get_by_role("button", name="نمایش").click()
    page.wait_for_load_state("load")
    assert "مهر ۱۴۰۴" in page.locator("#sum-h").inner_text()
    canvas = page.locator("canvas#report-chart")
    assert canvas.is_visible()
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('report-chart'))")
    bars = page.evaluate(
        "() => Chart.getChart(document.getElementById('report-chart')).data.datasets[0].data"
    )
    assert sorted(bars) == [3, 8]
    shoot(page, "reports-month")
    with page.expect_download() as caught:
        page.locator("#export-xlsx").click()
    download = caught.value
    assert download.suggested_filename == "report-month-1404-07.xlsx"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    rows = [tuple(r) for r in load_workbook(saved).active.iter_rows(values_only=True)]
    assert rows[2][:6] == ("مهر ۱۴۰۴", "1404/07/01", "1404/07/30", "همه", "همه", 11)
    assert ("درخواست", 3) in [r[:2] for r in rows]

    page.goto(f"{base}/public?service=1482&month=1404/07")
    assert page.locator("html").get_attribute("dir") == "rtl"
    kinds = page.locator("#public-by_kind").inner_text()
    assert "شکایت" in kinds and "۸" in kinds
    request_row = page.locator("#public-by_kind tr", has_text="درخواست").inner_text()
    assert "کمتر از ۵" in request_row and "۳" not in request_row
    assert page.locator("#public-total").inner_text() == "۱۱"
    shoot(page, "public-month")
    context.close()
