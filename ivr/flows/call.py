"""What every flow shares: the channel, the backend, the spool, the service profile, and the
bookkeeping the dial plan and the call log read back (outcome, path, tracking code)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from domain.call_profiles import WEEKDAYS
from domain.privacy import mask_phone
from ivr import dialplan_variables as var
from ivr.agi import AgiCommandError
from ivr.ami.mute_blocking import MuteFailed
from ivr.backend_client import BackendClient
from ivr.channel import Channel
from ivr.settings import IvrSettings
from ivr.spool import Spool

if TYPE_CHECKING:  # pydantic: not imported by a process-per-call script (issue 13)
    from domain.profiles import ServiceProfile

log = logging.getLogger("ivr.call")

T = TypeVar("T")
ATTEMPTS = 3


class TooManyFailures(Exception):
    """Three timeouts or wrong keys in a row at one menu."""


class Call:
    """One call's state. A plain class, not a dataclass: the dataclasses module (with inspect, ast
    and dis) was a tenth of a process-per-call script's CPU (issue 13)."""

    def __init__(
        self,
        channel: Channel,
        client: BackendClient,
        spool: Spool,
        settings: IvrSettings,
        profile: ServiceProfile,
        path: list[str] | None = None,
        outcome: str = "hangup",
        tracking_code: str | None = None,
        message_file: str | None = None,
        on_spooled: Callable[[], None] | None = None,
    ) -> None:
        self.channel = channel
        self.client = client
        self.spool = spool
        self.settings = settings
        self.profile = profile
        self.path: list[str] = [] if path is None else path
        self.outcome = outcome
        self.tracking_code = tracking_code
        self.message_file = message_file
        # Told when a case is spooled (the FastAGI server's deliverer wakes); a process-per-call
        # script leaves delivery to the FastAGI server or `didehban spool deliver`.
        self.on_spooled = on_spooled

    def __repr__(self) -> str:  # no caller number: reprs end up in logs and tracebacks (R9)
        return f"Call({self.call_id!r}, outcome={self.outcome!r}, path={'>'.join(self.path)!r})"

    @property
    def call_id(self) -> str:
        return self.channel.info.unique_id

    def spooled(self) -> None:
        if self.on_spooled is not None:
            self.on_spooled()

    def log(self, message: str, *args: object, level: int = logging.INFO) -> None:
        # Never a full number or a national ID in the log (R9).
        if not log.isEnabledFor(level):
            return
        log.log(
            level,
            "[%s %s %s] " + message,
            self.call_id,
            self.profile.number,
            mask_phone(self.channel.info.caller_number),
            *args,
        )

    async def step(self, token: str) -> None:
        """Record a step of the path for the dial plan; it goes with the next command (a hang-up
        may follow: Asterisk still runs the command that carries it, see Channel.set_variable)."""
        self.path.append(token)
        await self.channel.set_variable(var.PATH, ">".join(self.path))

    async def finish(self, outcome: str) -> None:
        self.outcome = outcome
        if self.channel.alive:
            await self.channel.set_variable(var.OUTCOME, outcome)

    async def menu(self, prompts: list[str], choices: Mapping[str, T], *, step: str) -> T:
        """Ask until a valid key: a timeout or a wrong key says so and asks again, three times.
        A key pressed over an earlier prompt (the welcome, an error prompt) answers at once: callers
        who know the menu press ahead (the channel keeps that key for this entry)."""
        for _attempt in range(ATTEMPTS):
            key = await self.channel.collect(prompts, max_digits=1, timeout_ms=6000)
            if key in choices:
                await self.step(f"{step}:{key}")
                return choices[key]
            await self.channel.play(["no-input" if not key else "invalid-key"])
        await self.step(f"{step}:failed")
        raise TooManyFailures(step)

    async def _mute_recording(self, mute: bool) -> bool:
        settings = self.settings
        how = {
            "host": settings.ami_host,
            "port": settings.ami_port,
            "username": f"{settings.ami_username}-ivr",
            "secret": settings.ami_secret,
            "channel": self.channel.info.channel,
            "mute": mute,
        }
        if self.channel.blocking:
            # The per-call script has no event loop (nor asyncio): the same AMI exchange, blocking.
            from ivr.ami.mute_blocking import mixmonitor_mute_blocking

            mixmonitor_mute_blocking(**how)
        else:
            from ivr.ami.mute import mixmonitor_mute  # asyncio: the FastAGI server's, imported by it

            await mixmonitor_mute(**how)
        return True

    @contextlib.asynccontextmanager
    async def private(self) -> AsyncIterator[None]:
        """The whole-call recording hears nothing inside: a national ID typed or read back, an
        answer meant for the case's owner alone. If the PBX cannot mute it, the recording stops for
        the rest of the call: privacy first, the supervisors keep what came before."""
        muted = False
        try:
            muted = await self._mute_recording(True)
            self.log("call recording muted", level=logging.DEBUG)
        except MuteFailed as exc:
            self.log("could not mute the call recording (%s): stopping it", exc)
            with contextlib.suppress(AgiCommandError):
                await self.channel.send('EXEC StopMixMonitor ""')
        try:
            yield
        finally:
            if muted and self.channel.alive:
                try:
                    await self._mute_recording(False)
                    self.log("call recording unmuted", level=logging.DEBUG)
                except MuteFailed as exc:
                    self.log("could not unmute the call recording: %s", exc)

    def operator_open(self, now: dt.datetime | None = None) -> bool:
        from zoneinfo import ZoneInfo  # only menu 0 and after failures ask (issue 13: per-call imports)

        hours = self.profile.operator_hours
        local = (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(self.profile.timezone))
        return WEEKDAYS[local.weekday()] in hours.days and hours.start <= local.time() < hours.end

    async def in_thread(self, fn, *args):
        """Blocking work (SQLite spool, espeak) off the event loop that serves every call; in place
        on a blocking channel (the per-call script: one call, no loop to keep free)."""
        if self.channel.blocking:
            return fn(*args)
        import asyncio  # imported by the FastAGI server already; never by the per-call script

        return await asyncio.to_thread(fn, *args)
