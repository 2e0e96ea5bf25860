"""Hearing a case's status by tracking code (R7), the answer only to its owner (R9), and
re-reporting a case that was not followed up (R8)."""

from __future__ import annotations

from typing import Any

from domain.tracking_code import InvalidTrackingCode, parse_tracking_code
from ivr import dialplan_variables as var
from ivr.backend_client import BackendRejected, BackendUnavailable
from ivr.flows.call import ATTEMPTS, Call, TooManyFailures
from ivr.flows.new_case import ask_national_id
from ivr.flows.routes import route
from prompts.say import say_jalali_date, say_time


def say_moment(moment: dict[str, Any] | None) -> list[str]:
    if not moment:
        return []
    p = moment["parts"]
    return [*say_jalali_date(p["year"], p["month"], p["day"]), *say_time(p["hour"], p["minute"])]


def status_prompts(status: dict[str, Any]) -> list[str]:
    """What is read, in order: stage, kind, unit, dates, deadline. Pure, so it is tested alone.
    Kind, urgency and unit come only to the case's owner; anyone else hears the stage and dates."""
    ids = ["status-intro", f"stage-{status['status']}"]
    if status.get("kind"):
        ids += ["case-kind-is", f"kind-{status['kind']}"]
    if status.get("urgent"):
        ids.append("urgent-word")
    if status.get("unit_code") and status["status"] not in ("closed", "rejected"):
        ids += ["handled-by", f"unit-{status['unit_code']}"]
    ids += ["registered-on", *say_moment(status.get("created"))]
    history = status.get("history") or []
    if len(history) > 1:
        ids += ["last-action-on", *say_moment(history[-1].get("at"))]
    if status.get("due") and status["status"] not in ("closed", "rejected"):
        ids += ["deadline-is", *say_moment(status["due"])]
    return ids


async def ask_tracking_code(call: Call) -> dict[str, Any] | None:
    """The case for a typed code. The check digit catches a typo before the backend is asked."""
    for _attempt in range(ATTEMPTS):
        # Room for the # the prompt asks for: with exactly 10, GET DATA returns at the 10th digit and
        # the caller's # lands on the next prompt as a stray key.
        digits = await call.channel.collect(["enter-tracking-code"], max_digits=11, timeout_ms=8000)
        if not digits:
            await call.channel.play(["no-input"])
            continue
        try:
            code = parse_tracking_code(digits)
        except InvalidTrackingCode:
            await call.step("code:invalid")
            await call.channel.play(["tracking-code-invalid"])
            continue
        # The spool first: a case this node filed and has not delivered yet (asked the other way
        # round, a delivery between the two look-ups would make a fresh case "not found").
        if await call.in_thread(call.spool.waiting, code):
            await call.step("code:spooled")
            call.tracking_code = code
            await call.channel.set_variable(var.TRACKING_CODE, code)
            return {"spooled": True, "tracking_code": code}
        status = await call.client.case_status(code, caller_number=call.channel.info.caller_number or None)
        if status is None:
            await call.step("code:unknown")
            await call.channel.play(["case-not-found"])
            continue
        await call.step("code")
        call.tracking_code = code
        # The call log shows which case a status call was about.
        await call.channel.set_variable(var.TRACKING_CODE, code)
        return status
    raise TooManyFailures("tracking-code")


async def read_answer(call: Call, status: dict[str, Any]) -> dict[str, Any]:
    if not status.get("has_answer"):
        await call.channel.play(["no-answer-yet"], keys="")
        return status
    if not status.get("owner_verified"):
        # Not the number that filed it: the national ID proves ownership (R9).
        await call.channel.play(["answer-only-for-owner"], keys="")
        national_id = await ask_national_id(call)
        proved = await call.client.case_status(
            status["tracking_code"],
            caller_number=call.channel.info.caller_number or None,
            national_id=national_id,
        )
        if not proved or not proved.get("owner_verified"):
            await call.step("owner:no")
            await call.channel.play(["not-owner"], keys="")
            return status
        await call.step("owner:nid")
        # Kept for pressing 9 later in the call: escalation needs the same proof.
        status = {**proved, "proved_national_id": national_id}
    from prompts.render import render_text  # espeak and its helpers: not for every call (issue 13)

    answer_prompt = await call.in_thread(render_text, status["answer"])
    async with call.private():  # the answer is the owner's: not in the whole-call recording
        await call.channel.play(["answer-is", answer_prompt], keys="")
    return status


async def survey(call: Call, status: dict[str, Any]) -> None:
    """A closed case's owner rates the handling 1-5 (R21)."""
    try:
        rating = await call.menu(["satisfaction-survey"], {str(n): n for n in range(1, 6)}, step="rate")
    except TooManyFailures:
        return
    try:
        await call.client.rate(
            status["tracking_code"], rating=rating, caller_number=call.channel.info.caller_number
        )
    except (BackendRejected, BackendUnavailable) as exc:
        call.log("rating not recorded: %s", exc)
    await call.channel.play(["thanks-for-rating"], keys="")


async def offer_escalation(call: Call, status: dict[str, Any]) -> None:
    if status["status"] == "rejected":
        return
    key = await call.channel.collect(["escalate-offer"], max_digits=1, timeout_ms=5000)
    if key != "9":
        return
    await call.step("escalate")
    national_id = status.get("proved_national_id")
    if not status.get("owner_verified") and not national_id:
        # Not the number that filed it: only the filer may escalate, proved by the national ID (R9).
        try:
            national_id = await ask_national_id(call)
        except TooManyFailures:
            return
    try:
        result = await call.client.escalate(
            status["tracking_code"],
            caller_number=call.channel.info.caller_number,
            national_id=national_id,
            call_id=call.call_id,
        )
    except BackendRejected as exc:
        call.log("escalation refused: %s", exc.code)
        if exc.status == 403:
            await call.step("owner:no")
            await call.channel.play(["not-owner"], keys="")
        else:
            await call.channel.play(
                ["already-escalated" if exc.status == 409 else "status-unavailable"], keys=""
            )
        return
    await call.finish("escalated")
    await call.channel.play(["already-escalated" if result.get("already") else "escalated"], keys="")


@route("status")
async def case_status(call: Call) -> None:
    try:
        status = await ask_tracking_code(call)
    except (BackendUnavailable, BackendRejected):  # down, or too many look-ups from this number (429)
        await call.channel.play(["status-unavailable", "goodbye"], keys="")
        await call.finish("failed")
        return
    assert status is not None
    await call.finish("status")
    if status.get("spooled"):
        # Still on this node, on its way to the backend: registered, nothing done with it yet.
        await call.channel.play(["case-waiting-for-review", "goodbye"], keys="")
        return
    await call.channel.play(status_prompts(status), keys="")
    try:
        status = await read_answer(call, status)
        if status["status"] == "closed" and status.get("owner_verified") and not status.get("rated"):
            await survey(call, status)
        await offer_escalation(call, status)
    except (BackendUnavailable, BackendRejected):
        await call.channel.play(["status-unavailable"], keys="")
    await call.channel.play(["goodbye"], keys="")
