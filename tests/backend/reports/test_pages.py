"""The report as JSON, in the console with its exports, and on the public page (R19-R21)."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from sqlalchemy import select

from backend.models import PublicNote
from tests.backend.api.test_staff import login
from tests.backend.console.conftest import console_login, csrf_of
from tests.backend.reports.builders import HOUR, make_case, tehran
from tests.backend.reports.test_figures import mehr  # noqa: F401


def test_the_api_answers_a_months_report(client, db, staff, mehr):  # noqa: F811
    r = client.get(
        "/api/v1/staff/reports", params={"period": "month", "from": "1404/07"}, headers=login(client, "super")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 10 and body["period"]["key"] == "month:1404-07"
    assert body["durations"]["answer"]["median_seconds"] == 35 * 3600
    # Persian digits and a day of the month name the same month.
    again = client.get(
        "/api/v1/staff/reports",
        params={"period": "month", "from": "۱۴۰۴/۰۷/۱۵"},
        headers=login(client, "mashhad"),
    )
    assert again.status_code == 200 and again.json()["total"] == 6  # the manager's subtree
    r = client.get(
        "/api/v1/staff/reports",
        params={"from": "1404/07/01", "to": "1404/07/01", "service": "1482"},
        headers=login(client, "admin"),
    )
    assert r.status_code == 200 and r.json()["total"] == 5  # the first day only


def test_the_api_refuses_what_it_must(client, db, staff):
    op = login(client, "op")
    assert client.get("/api/v1/staff/reports", headers=op).status_code == 403
    mashhad = login(client, "mashhad")
    r = client.get("/api/v1/staff/reports", params={"unit": "1482-khr-neyshabur"}, headers=mashhad)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unit_not_found"
    r = client.get("/api/v1/staff/reports", params={"period": "month", "from": "1404/13"}, headers=mashhad)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_period"
    r = client.get(
        "/api/v1/staff/reports", params={"from": "1404/07/10", "to": "1404/07/01"}, headers=mashhad
    )
    assert r.status_code == 422
    assert client.get("/api/v1/staff/reports").status_code == 401


def test_the_console_page_and_its_exports(client, db, staff, mehr):  # noqa: F811
    console_login(client, "super")
    query = {"period": "month", "date_from": "1404/07"}
    page = client.get("/console/reports", params=query)
    assert page.status_code == 200 and 'id="report-chart"' in page.text
    assert "/console/static/vendor/chart.umd.min.js" in page.text and "مهر ۱۴۰۴" in page.text
    assert client.get("/console/static/vendor/chart.umd.min.js").status_code == 200
    xlsx = client.get("/console/reports/export.xlsx", params=query)
    assert (
        xlsx.status_code == 200
        and 'filename="report-month-1404-07.xlsx"' in xlsx.headers["content-disposition"]
    )
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    values = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    assert values[1][:6] == ("دوره", "از", "تا", "سامانه", "واحد", "تعداد پرونده")
    assert values[2][:6] == ("مهر ۱۴۰۴", "1404/07/01", "1404/07/30", "همه", "همه", 10)
    assert ("پاسخ داده شده", 6) in [tuple(v[:2]) for v in values]
    text = client.get("/console/reports/export.csv", params=query).content.decode("utf-8-sig")
    assert ["نوع", "تعداد"] in list(csv.reader(io.StringIO(text)))
    # An operator has no reports; a bad month reads as a Persian error.
    console_login(client, "op")
    assert client.get("/console/reports").status_code == 403
    console_login(client, "mashhad")
    assert client.get("/console/reports", params={"period": "month", "date_from": "x"}).status_code == 422


def test_the_public_page_hides_figures_below_five(client, db, staff):
    start = tehran(2025, 9, 23, 9, 0)
    for i in range(7):
        make_case(db, start + i * HOUR, kind="complaint", channel="phone", answered_after=HOUR)
    for i in range(2):
        make_case(db, start + i * HOUR, kind="request", channel="web")
    db.commit()
    figures = client.get("/public/data/1482/1404-07.json")
    assert figures.status_code == 200
    body = figures.json()
    counts = {r["key"]: r["count"] for r in body["by_kind"]}
    assert body["total"] == 9 and counts == {"complaint": 7, "request": None}
    assert body["on_time"]["share"] == 1.0 and body["satisfaction"]["mean"] is None
    assert body["trend"][-1] == {"month": "1404-07", "label_fa": "مهر ۱۴۰۴", "count": 9}
    assert body["trend"][0]["count"] is None  # an empty month reads "fewer than 5" as well
    page = client.get("/public", params={"service": "1482", "month": "1404/07"})
    assert page.status_code == 200 and 'dir="rtl"' in page.text
    assert "کمتر از ۵" in page.text and "tracking" not in page.text
    rows = list(
        csv.reader(io.StringIO(client.get("/public/data/1482/1404-07.csv").content.decode("utf-8-sig")))
    )
    assert ["نوع", "درخواست", "کمتر از ۵"] in rows and ["نوع", "شکایت", "7"] in rows
    assert client.get("/public/data/9999/1404-07.json").status_code == 404
    assert client.get("/public/data/1482/1404-13.json").status_code == 422


def test_an_administrator_writes_the_months_weaknesses_and_actions(client, db, staff):
    csrf = console_login(client, "admin")
    form = client.get("/console/admin/public-notes")
    assert form.status_code == 200
    r = client.post(
        "/console/admin/public-notes",
        data={
            "csrf": csrf_of(form.text),
            "service": "1482",
            "month": "۱۴۰۴/۰۷",
            "text": "کندی پاسخ در مراکز",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert db.scalar(select(PublicNote.month)) == "1404-07"
    assert "کندی پاسخ در مراکز" in client.get("/public", params={"service": "1482", "month": "1404/07"}).text
    assert (
        client.get("/public/data/1482/1404-07.json").json()["weaknesses_and_actions"] == "کندی پاسخ در مراکز"
    )
    console_login(client, "super")
    assert client.get("/console/admin/public-notes").status_code == 403
    assert csrf
