"""The channel interface the call flows are written against.

Every operation is built on one abstract round trip, `_send(command) -> Reply`, so the same flows run
on the FastAGI server (panoramisk), in a process-per-call AGI script (stdin/stdout), and in tests.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import re
from typing import NamedTuple

from domain.digits import normalise_digits
from ivr.agi import AgiCommandError, CallerHungUp, Reply, quote
from prompts.paths import prompt_file

log = logging.getLogger(__name__)

ALL_KEYS = "0123456789*#"
# Characters Playback's argument parsing would take for its own (file separator, option separator,
# quoting, a variable): a path holding one is played with STREAM FILE instead.
_NOT_IN_PLAYBACK = frozenset('&,|"\\$')
# Read's arguments follow its file list, and its parsing nests brackets: a `(` or `[` in a path would
# swallow the commas after it.
_NOT_IN_READ = _NOT_IN_PLAYBACK | frozenset("()[]")
# The channel variable Read leaves the keys in (a menu's key: never a national ID, see collect).
KEYS_VARIABLE = "DIDEHBAN_KEYS"
# Values MSet takes as they are: nothing its argument parsing would split on, unquote or expand.
_MSET_VALUE = re.compile(r"[0-9A-Za-z_.:/>+-]+")


def _fits_mset(name: str, value: str) -> bool:
    return _MSET_VALUE.fullmatch(name) is not None and _MSET_VALUE.fullmatch(value) is not None


def _holds_any(paths: list[str], characters: frozenset[str]) -> bool:
    return any(ch in path for path in paths for ch in characters)


def _fits_read(paths: list[str]) -> bool:
    return not _holds_any(paths, _NOT_IN_READ) and len("&".join(paths).encode()) <= PLAYBACK_MAX_BYTES


# res_agi reads a command into 2,048 bytes: a longer Playback is split into several.
PLAYBACK_MAX_BYTES = 1900


class CallInfo(NamedTuple):  # a named tuple, as ivr.agi.Reply (issue 13)
    unique_id: str
    caller_number: str
    service: str
    route: str
    channel: str = ""

    @classmethod
    def from_environment(cls, env: dict[str, str]) -> CallInfo:
        # Digits only: "unknown", "anonymous" or a SIP user name is no number to text or verify.
        caller = "".join(ch for ch in normalise_digits(env.get("agi_callerid", "")) if ch.isdigit())
        service = env.get("agi_arg_1") or env.get("agi_dnid") or env.get("agi_extension", "")
        if service in ("unknown", ""):
            service = env.get("agi_extension", "")
        route = env.get("agi_network_script") or env.get("agi_request", "").rsplit("/", 1)[-1]
        return cls(
            unique_id=env.get("agi_uniqueid", ""),
            caller_number=caller,
            service=service,
            route=route.split("?", 1)[0],
            channel=env.get("agi_channel", ""),
        )


class Recording(NamedTuple):
    path: str  # without extension, as Asterisk wrote it
    ended_by: str  # "dtmf" (caller pressed #), "timeout" (max length or silence), "hangup"
    samples: int  # endpos reported by Asterisk (8 kHz samples)


class Channel(abc.ABC):
    # True when every operation blocks the process until Asterisk answers and no event loop runs
    # (the process-per-call script): a flow's blocking work is then done in place, without asyncio.
    blocking = False

    def __init__(self, info: CallInfo) -> None:
        self.info = info
        self.alive = True
        # Where the prompts are, as Asterisk sees them: read once a call, not once a prompt.
        self._prompts = prompt_file("")
        # Keys that stopped a prompt and wait to be the start of the next entry (type-ahead).
        self.typed_ahead = ""
        # Channel variables set and not yet sent (set_variable), in the order first set.
        self._variables: dict[str, str] = {}

    @abc.abstractmethod
    async def _send(self, command: str) -> Reply:
        """Send one AGI command and read its reply (CallerHungUp when the channel is gone)."""

    async def send(self, command: str) -> Reply:
        return await self._round_trip(command)

    async def _round_trip(self, command: str) -> Reply:
        if not self.alive:
            raise CallerHungUp("channel already gone")
        try:
            return await self._send(command)
        except CallerHungUp:
            self.alive = False
            raise

    async def flush(self) -> None:
        """Hand the variables set so far to Asterisk now, in one command where MSet can carry them:
        before a recording, before a tracking code is read, at the flow's end. Also once the caller
        has hung up: res_agi runs SET VARIABLE and EXEC on a dead channel, and the dial plan reads
        them after the flow (its h extension), so a path ended by a hang-up is still whole."""
        variables, self._variables = self._variables, {}
        if len(variables) > 1 and all(_fits_mset(name, value) for name, value in variables.items()):
            pairs = ",".join(f"{name}={value}" for name, value in variables.items())
            commands = [f"EXEC MSet {quote(pairs)}"]
        else:
            commands = [f"SET VARIABLE {name} {quote(value)}" for name, value in variables.items()]
        for command in commands:
            if not self.alive:
                with contextlib.suppress(CallerHungUp):  # the connection itself is gone: nothing to tell
                    await self._send(command)
                continue
            try:
                await self._round_trip(command)
            except CallerHungUp:
                # The HANGUP line may have answered this command, which Asterisk runs all the same:
                # the variables go again after the hang-up (the same values, harmless twice).
                self._variables = {**variables, **self._variables}
                raise

    # --- the operations the flows use ---------------------------------------------------------

    async def answer(self) -> None:
        await self.send("ANSWER")

    async def play(self, prompt_ids: list[str], keys: str = ALL_KEYS) -> str | None:
        """Play prompts in order; a key in `keys` stops playback and is returned. The key is also
        kept as the first key of the next entry (`collect`), so nothing the caller types is lost.

        Prompts no key stops (keys="": a tracking code read back, a status) go in one command."""
        if not keys and len(prompt_ids) > 1:
            await self.play_through([self._prompts + prompt_id for prompt_id in prompt_ids])
            return None
        for prompt_id in prompt_ids:
            key = await self.play_file(self._prompts + prompt_id, keys)
            if key:
                return key
        return None

    async def play_file(self, path: str, keys: str = ALL_KEYS) -> str | None:
        if keys and self.typed_ahead:
            # The caller is already typing: a prompt that listens for keys would stop at once.
            return self.typed_ahead[0]
        reply = await self.send(f"STREAM FILE {quote(path)} {quote(keys)}")
        key = chr(reply.result_int) if reply.result_int > 0 else None
        if key:
            self.typed_ahead += key
        return key

    async def play_through(self, paths: list[str]) -> None:
        """Files no key stops, in order, in one command (issue 13: a code read back was 23 commands).
        Playback(a&b&c) plays each as STREAM FILE with no escape keys does, and Asterisk drops a key
        pressed during either; only the round trip between files is gone. Paths Playback would read
        otherwise (`&` separates files, `,` starts its options, quotes are unescaped) are played
        file by file; a list too long for one AGI line is split."""
        if not paths:
            return
        if _holds_any(paths, _NOT_IN_PLAYBACK):
            for path in paths:
                await self.send(f"STREAM FILE {quote(path)} {quote('')}")
            return
        run: list[str] = []
        for path in paths:
            if run and len("&".join([*run, path]).encode()) > PLAYBACK_MAX_BYTES:
                await self._playback(run)
                run = []
            run.append(path)
        await self._playback(run)

    async def _playback(self, paths: list[str]) -> None:
        if len(paths) == 1:
            await self.send(f"STREAM FILE {quote(paths[0])} {quote('')}")
        else:
            await self.send(f"EXEC Playback {quote('&'.join(paths))}")

    def take_typed_ahead(self) -> str:
        """The keys pressed over prompts and not yet taken by an entry (a flow that uses them as
        "skip this prompt" takes them here, so they do not answer the next question too)."""
        keys, self.typed_ahead = self.typed_ahead, ""
        return keys

    async def collect(
        self, prompt_ids: list[str], *, max_digits: int, timeout_ms: int = 6000, terminator: str = "#"
    ) -> str:
        """Digits typed after (or over) the prompts. Ends on the terminator, max_digits, or a pause.
        Returns "" on no input. The terminator itself is not returned.

        A key that stopped any earlier prompt (an error prompt, a menu, the welcome) is the first key
        of this entry: the prompts are not played, and the rest of the entry is read after it."""
        if not self.typed_ahead and len(prompt_ids) > 1:
            if max_digits == 1:  # one key: prompts and wait in one Read (see _read)
                paths = [self._prompts + prompt_id for prompt_id in prompt_ids]
                if _fits_read(paths):
                    return await self._read(paths, max_digits, timeout_ms)
            await self.play(prompt_ids[:-1])
        if not self.typed_ahead:
            # GET DATA plays the last prompt and listens, the way Asterisk catches DTMF best.
            target = self._prompts + prompt_ids[-1] if prompt_ids else ""
            reply = await self.send(f"GET DATA {quote(target)} {timeout_ms} {max_digits}")
            return normalise_digits(reply.result)
        typed = self.take_typed_ahead()
        if terminator in typed:
            return normalise_digits(typed.split(terminator, 1)[0])[:max_digits]
        if len(typed) < max_digits:
            # No prompt: GET DATA with an empty file name only listens, in one command, so no key
            # falls between two commands (Asterisk drops DTMF that arrives while no command runs).
            reply = await self.send(f"GET DATA {quote('')} {timeout_ms} {max_digits - len(typed)}")
            typed += reply.result
        return normalise_digits(typed)[:max_digits]

    async def _read(self, paths: list[str], max_digits: int, timeout_ms: int) -> str:
        """Prompts a key stops and the wait for the entry after them, in two commands rather than
        one a prompt (issue 13: a national ID read back was 12). Read(var,a&b&c,...) plays each file
        and stops at the first key, which is the entry's first key, as a key over a STREAM FILE is;
        after the last file it waits as GET DATA does (the same time-out for the first key and
        between keys; # ends the entry and is not kept; # alone is an empty entry). Between two
        files it listens 50 ms for a key. Option n: the line is not answered by Read, as GET DATA
        would not. Only for one-key entries: after a key over an earlier file Read waits the dial
        plan's digit time-out, not ours, for the next key.

        Read returns 0 on a hang-up too: READSTATUS says so (the per-call script hears no HANGUP
        line, only this), read with the keys in one GET FULL VARIABLE."""
        read = f"{KEYS_VARIABLE},{'&'.join(paths)},{max_digits},n,1,{timeout_ms / 1000:g}"
        if (await self.send(f"EXEC Read {quote(read)}")).result_int == -2:
            # Not loaded (modules.conf): the variables would be an earlier Read's, or none.
            raise AgiCommandError("Asterisk has no Read application (app_read.so)")
        reply = await self.send(f"GET FULL VARIABLE {quote('${READSTATUS}:${' + KEYS_VARIABLE + '}')}")
        status, _, keys = reply.data.partition(":")
        if status == "HANGUP":
            self.alive = False
            raise CallerHungUp("hangup during Read")
        return normalise_digits(keys)[:max_digits]

    async def wait_for_key(self, timeout_ms: int) -> str | None:
        reply = await self.send(f"WAIT FOR DIGIT {timeout_ms}")
        return chr(reply.result_int) if reply.result_int > 0 else None

    async def record(self, path: str, *, max_seconds: int = 180, silence_seconds: int = 5) -> Recording:
        """Record the caller into <path>.wav until #, silence, max length or hang-up.
        A hang-up still leaves what was said on disk, and is reported as ended_by="hangup"."""
        self.typed_ahead = ""  # keys pressed before the beep are no part of the message
        await self.flush()  # a hang-up before RECORD FILE is not one during the recording
        command = f"RECORD FILE {quote(path)} wav {quote('#')} {max_seconds * 1000} 0 s={silence_seconds}"
        try:
            reply = await self.send(command)
        except CallerHungUp:
            return Recording(path, "hangup", 0)
        samples = int(reply.extra.get("endpos", "0") or 0)
        ended = "dtmf" if reply.data == "dtmf" else "timeout"
        return Recording(path, ended, samples)

    async def set_variable(self, name: str, value: str) -> None:
        """The variable reaches Asterisk at the next flush (see flush): the variables set meanwhile
        (the service, each step of the path, the message file) go in one command, not one each as
        they were set, and a variable set twice before then is sent once, with its last value
        (issue 13: they were a fifth of a new-case call's commands). Nothing the dial plan reads is
        lost: it reads them after the flow ends, and Asterisk runs them sent after a hang-up (the
        connection stays open until the flow ends)."""
        self._variables[name] = value

    async def hangup(self) -> None:
        if self.alive:
            with contextlib.suppress(CallerHungUp):
                await self.send("HANGUP")
            self.alive = False
