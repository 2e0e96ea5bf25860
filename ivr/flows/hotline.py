"""The whole call (R1, R2): greeting, main menu, and the routes the dial plan can enter directly."""

from __future__ import annotations

import contextlib
import logging

from ivr import dialplan_variables as var
from ivr.agi import CallerHungUp
from ivr.flows.call import Call, TooManyFailures
from ivr.flows.new_case import Draft, file_case, new_case, read_tracking_code, record_keeping_what_was_said
from ivr.flows.routes import DEFAULT_ROUTE, ROUTES, route
from ivr.flows.status import case_status


@route("operator")
async def operator(call: Call) -> None:
    """Menu 0: the operator queue in office hours; outside them, a message that becomes a case."""
    if call.operator_open():
        await call.channel.play(["operator-connecting"], keys="")
        await call.finish("operator")  # the dial plan runs Queue(operators-<service>)
        return
    await call.channel.play(["operator-closed-leave-message"], keys="")
    await leave_message(call)


@route("message")
async def leave_message(call: Call) -> None:
    """A voice message with no menus: filed as an incomplete request for the operators to screen."""
    draft = Draft(kind="request", description="پیام صوتی تماس‌گیرنده (بدون ثبت کد ملی)")
    await record_keeping_what_was_said(
        call, draft, outcome_if_hung_up="message", intro="leave-message-after-beep", confirm=False
    )
    code = await file_case(call, draft, incomplete=True)
    await call.finish("message")
    await call.channel.play(["message-received"], keys="")
    await read_tracking_code(call, code, then=("goodbye",))


async def after_failures(call: Call) -> None:
    """Three failures at a menu: a person if one is on duty, else a goodbye that says what to do."""
    if call.operator_open():
        await call.channel.play(["transfer-to-operator"], keys="")
        await call.finish("operator")
    else:
        await call.channel.play(["too-many-failures-goodbye"], keys="")
        await call.finish("goodbye")


@route("hotline")
async def hotline(call: Call) -> None:
    await call.channel.answer()
    await call.channel.set_variable(var.DIDEHBAN_SERVICE, call.profile.number)
    # A key pressed over the welcome answers the main menu (the channel keeps it for the menu).
    await call.channel.play([f"welcome-{call.profile.number}"])
    choice = await call.menu(["main-menu"], {"1": "new", "2": "status", "0": "operator"}, step="menu")
    if choice == "new":
        await new_case(call)
    elif choice == "status":
        await case_status(call)
    else:
        await operator(call)


async def run_route(call: Call, route: str) -> None:
    """Run one route to its end, whatever the caller does; the outcome is left on the channel."""
    flow = ROUTES.get(route) or ROUTES[DEFAULT_ROUTE]
    try:
        try:
            await flow(call)
        except TooManyFailures as failure:
            call.log("three failures at %s", failure)
            await after_failures(call)
    except CallerHungUp:
        call.log("caller hung up after %s", ">".join(call.path) or "the greeting")
        if call.outcome not in ("registered", "message", "escalated", "status"):
            call.outcome = "hangup"


async def handle_call(channel, *, settings, client, spool, profiles, on_spooled=None) -> Call:
    """One call from start to end, on any channel (FastAGI or a process-per-call script)."""
    info = channel.info
    profile = profiles.get(info.service)
    if profile is None:
        # A dial plan passing a number we have no profile for: say so to the dial plan, not the caller.
        logging.getLogger("ivr.call").error("call %s for unknown service %r", info.unique_id, info.service)
        with contextlib.suppress(CallerHungUp):
            await channel.set_variable(var.OUTCOME, "failed")
            await channel.flush()
        return None  # type: ignore[return-value]
    call = Call(channel, client, spool, settings, profile, on_spooled=on_spooled)
    try:
        await run_route(call, info.route)
        # The variables set since the last flush (the outcome, the path) reach the dial plan, after
        # a hang-up too (Channel.flush).
        with contextlib.suppress(CallerHungUp):
            await channel.flush()
    finally:
        call.log("ended: %s via %s", call.outcome, ">".join(call.path))
    return call
