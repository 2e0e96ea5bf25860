"""Registering a new case by phone (R3-R6): kind, urgency, national ID, the message, the code."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from domain.national_id import InvalidNationalId, parse_national_id
from ivr import dialplan_variables as var
from ivr.agi import CallerHungUp
from ivr.channel import Recording
from ivr.flows.call import ATTEMPTS, Call, TooManyFailures
from ivr.flows.routes import route
from prompts.say import say_digits

KINDS = {"1": "complaint", "2": "suggestion", "3": "request", "4": "violation"}
MIN_MESSAGE_SECONDS = 1.0
SAMPLE_RATE = 8000
# Recording folders (a service's, a day's) this process has made: one thread hop a folder a day,
# not one a call.
_made_folders: set[Path] = set()


class Draft:
    """The case as the call gathers it. A plain class, not a dataclass (ivr.flows.call.Call)."""

    def __init__(
        self,
        kind: str = "request",
        urgent: bool = False,
        national_id: str | None = None,
        recording: Recording | None = None,
        description: str | None = None,
    ) -> None:
        self.kind = kind
        self.urgent = urgent
        self.national_id = national_id
        self.recording = recording
        self.description = description

    def __repr__(self) -> str:  # no national ID: reprs end up in logs and tracebacks (R9)
        return f"Draft(kind={self.kind!r}, urgent={self.urgent!r}, recording={self.recording!r})"


def recording_names(call: Call, now: dt.datetime) -> tuple[Path, str, str]:
    """(folder on this host, path as Asterisk sees it without extension, path relative to the root)."""
    safe_id = re.sub(r"[^0-9A-Za-z._-]", "_", call.call_id) or "call"
    relative = f"{call.profile.number}/{now:%Y%m%d}/{safe_id}-message"
    host_folder = call.settings.recordings_dir / call.profile.number / f"{now:%Y%m%d}"
    return host_folder, f"{call.settings.pbx_recording_path().rstrip('/')}/{relative}", relative + ".wav"


async def ask_national_id(call: Call) -> str:
    # Typed and read back with the whole-call recording muted: no national ID in it (issue 9).
    async with call.private():
        return await _ask_national_id(call)


async def _ask_national_id(call: Call) -> str:
    for _attempt in range(ATTEMPTS):
        # Room for the # the prompt asks for: with exactly 10, GET DATA returns at the 10th digit and
        # the caller's # lands on the next prompt as a stray key.
        digits = await call.channel.collect(["enter-national-id"], max_digits=11, timeout_ms=8000)
        if not digits:
            await call.channel.play(["no-input"])
            continue
        try:
            national_id = parse_national_id(digits)
        except InvalidNationalId:
            await call.step("nid:invalid")
            await call.channel.play(["national-id-invalid"])
            continue
        # Read back digit by digit: 1 confirms, 2 enters it again.
        choice = await call.menu(
            ["you-entered", *say_digits(national_id), "confirm-menu"],
            {"1": True, "2": False},
            step="nid-confirm",
        )
        if choice:
            await call.step("nid")
            return national_id
    await call.step("nid:failed")
    raise TooManyFailures("national-id")


async def record_message(
    call: Call, draft: Draft, *, intro: str = "record-instructions", confirm: bool = True
) -> Recording:
    """Record until the caller confirms. The draft holds the recording as soon as it exists, so a
    hang-up from here on still files a case with what was said."""
    now = dt.datetime.now(dt.UTC)
    host_folder, pbx_path, relative = recording_names(call, now)
    if host_folder not in _made_folders:
        await call.in_thread(lambda: host_folder.mkdir(parents=True, exist_ok=True))
        _made_folders.add(host_folder)
    call.message_file = relative
    await call.channel.set_variable(var.MESSAGE_FILE, relative)
    for _attempt in range(ATTEMPTS):
        # A caller who knows what to do presses any key to skip the instructions to the beep.
        await call.channel.play([intro])
        call.channel.take_typed_ahead()
        await call.channel.play(["beep"], keys="")
        recording = await call.channel.record(pbx_path, max_seconds=180, silence_seconds=5)
        draft.recording = recording
        await call.step("record")
        if recording.ended_by == "hangup":
            raise CallerHungUp("hung up while recording")
        if recording.samples < MIN_MESSAGE_SECONDS * SAMPLE_RATE:
            await call.channel.play(["no-message-recorded"])
            continue
        if not confirm:
            return recording
        while True:
            try:
                choice = await call.menu(
                    ["recording-menu"], {"1": "listen", "2": "again", "3": "done"}, step="rec-menu"
                )
            except TooManyFailures:
                return recording  # silence at this menu: keep what was said rather than lose it
            if choice == "listen":
                await call.channel.play_file(pbx_path, keys="")
                continue
            break
        if choice == "done":
            return recording
    return draft.recording  # type: ignore[return-value]


async def record_keeping_what_was_said(
    call: Call, draft: Draft, *, outcome_if_hung_up: str, **record_options
) -> None:
    """Record the message; if the caller hangs up once recording has begun, file the case with what
    was said (flagged incomplete) before the hang-up ends the flow. Nothing a caller said is lost."""
    try:
        await record_message(call, draft, **record_options)
    except CallerHungUp:
        if draft.recording is not None:
            await file_case(call, draft, incomplete=True)
            await call.finish(outcome_if_hung_up)
        raise


async def file_case(call: Call, draft: Draft, *, incomplete: bool) -> str:
    """Issue the code here (this node's prefix) and keep the case in the durable spool; the caller
    hears the code at once, and the deliverer hands the case to the backend behind the call
    (issue 13: the caller never waits for the backend, whether it is fast, slow or down)."""
    payload = {
        "service": call.profile.number,
        "kind": draft.kind,
        "urgent": draft.urgent,
        "national_id": draft.national_id,
        "caller_number": call.channel.info.caller_number or None,
        "channel": "phone",
        "call_id": call.call_id,
        "incomplete": incomplete,
        "description": draft.description,
        "received_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    if draft.recording is not None and call.message_file:
        payload["recording_path"] = call.message_file
        payload["recording_seconds"] = round(draft.recording.samples / SAMPLE_RATE, 2) or None
    # Returns once the case is durably on disk: the caller never hears a code the node could lose.
    code = await call.spool.filed(call.call_id, payload)
    call.spooled()
    call.log("case spooled under %s", code)
    call.tracking_code = code
    if call.channel.alive:
        await call.channel.set_variable(var.TRACKING_CODE, code)
    return code


async def read_tracking_code(call: Call, code: str, *, then: tuple[str, ...] = ()) -> None:
    """The code digit by digit, twice, then 1 to hear it again; `then`: prompts after the SMS notice.
    No key stops these prompts, so each run of them is one command (Channel.play_through). The
    code (with the outcome and the path) reaches the dial plan before the caller hears it."""
    await call.channel.flush()
    spoken = ["your-tracking-code-is", *say_digits(code)]
    await call.channel.play(["case-registered", *spoken, *spoken], keys="")
    for _ in range(3):
        key = await call.channel.collect(["tracking-code-repeat-menu"], max_digits=1, timeout_ms=4000)
        if key != "1":
            break
        await call.channel.play(spoken, keys="")
    await call.channel.play(["sms-will-follow", *then], keys="")


@route("new-case")
async def new_case(call: Call) -> None:
    draft = Draft()
    draft.kind = await call.menu(["kind-menu"], KINDS, step="kind")
    draft.urgent = await call.menu(["urgency-menu"], {"1": True, "2": False}, step="urgent")
    draft.national_id = await ask_national_id(call)
    await record_keeping_what_was_said(call, draft, outcome_if_hung_up="hangup")
    code = await file_case(call, draft, incomplete=False)
    await call.finish("registered")
    await read_tracking_code(call, code, then=("goodbye",))
