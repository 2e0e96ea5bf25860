"""A report as a table for people: CSV (UTF-8 with BOM, so Excel reads Persian) and XLSX, with Persian
headers and Jalali dates."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from domain.jalali import jalali_text

Section = tuple[str, list[str], list[list[Any]]]


def hours(seconds: float | None) -> float | str:
    return "" if seconds is None else round(seconds / 3600, 1)


def percent(value: float | None) -> float | str:
    return "" if value is None else round(value * 100, 1)


def sections(report: dict[str, Any]) -> list[Section]:
    """The report as titled tables, in the order a reader wants them."""
    period = report["period"]
    out: list[Section] = [
        (
            "گزارش",
            ["دوره", "از", "تا", "سامانه", "واحد", "تعداد پرونده", "تهیه شده در"],
            [
                [
                    period["label_fa"],
                    period["first_day"],
                    period["last_day"],
                    report["service"] or "همه",
                    report["unit"] or "همه",
                    report["total"],
                    jalali_text(_parse(report["generated_at"])),
                ]
            ],
        )
    ]
    for key, title in (
        ("by_kind", "نوع"),
        ("by_category", "دسته"),
        ("by_channel", "مجرای دریافت"),
        ("by_urgency", "فوریت"),
        ("by_unit", "واحد"),
        ("handling", "نحوه رسیدگی"),
    ):
        out.append((title, [title, "تعداد"], [[r["label_fa"], r["count"]] for r in report[key]]))
    on_time = report["on_time"]
    out.append(
        (
            "پاسخ در مهلت",
            ["پاسخ داده شده", "در مهلت", "درصد در مهلت"],
            [[on_time["answered"], on_time["on_time"], percent(on_time["share"])]],
        )
    )
    out.append(
        (
            "زمان رسیدگی (ساعت)",
            ["مرحله", "تعداد", "میانه (ساعت)", "صدک ۹۰ (ساعت)"],
            [
                [d["label_fa"], d["count"], hours(d["median_seconds"]), hours(d["p90_seconds"])]
                for d in report["durations"].values()
            ],
        )
    )
    sat = report["satisfaction"]
    out.append(
        (
            "رضایت شهروندان",
            ["واحد", "تعداد نظر", "میانگین", "۱", "۲", "۳", "۴", "۵"],
            [
                [u["name_fa"], u["ratings"], u["mean"] if u["mean"] is not None else ""]
                + [u["distribution"][str(r)] for r in range(1, 6)]
                for u in [{"name_fa": "همه واحدها", **sat["overall"]}, *sat["units"]]
            ],
        )
    )
    out.append(
        (
            "بیشترین بازگشت به دلیل تأخیر",
            ["واحد", "بازگشت به دلیل تأخیر"],
            [[u["name_fa"], u["late_returns"]] for u in report["late_units"]],
        )
    )
    names = {
        "total": "تعداد پرونده",
        "answered": "پاسخ داده شده",
        "closed": "بسته شده",
        "returned_late": "بازگشته به دلیل تأخیر",
        "on_time_share": "سهم پاسخ در مهلت",
        "median_answer_seconds": "میانه زمان پاسخ (ثانیه)",
        "satisfaction_mean": "میانگین رضایت",
    }
    out.append(
        (
            f"مقایسه با دوره پیش ({report['previous_period']['label_fa']})",
            ["شاخص", "این دوره", "دوره پیش", "تغییر"],
            [
                [names.get(k, k), _blank(c["current"]), _blank(c["previous"]), _blank(c["change"])]
                for k, c in report["change"].items()
            ],
        )
    )
    return out


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _parse(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)


def to_csv(report: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for title, header, rows in sections(report):
        writer.writerow([title])
        writer.writerow(header)
        writer.writerows(rows)
        writer.writerow([])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(report: dict[str, Any]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "گزارش"
    sheet.sheet_view.rightToLeft = True
    bold = Font(bold=True)
    for title, header, rows in sections(report):
        sheet.append([title])
        sheet.cell(row=sheet.max_row, column=1).font = bold
        sheet.append(header)
        for cell in sheet[sheet.max_row]:
            cell.font = bold
        for row in rows:
            sheet.append(row)
        sheet.append([])
    sheet.column_dimensions["A"].width = 40
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def file_name(report: dict[str, Any], suffix: str) -> str:
    """ASCII only: report-month-1404-07.xlsx (never an identity; the period names it)."""
    key = report["period"]["key"].replace(":", "-").replace("..", "_")
    return f"report-{key}.{suffix}"
