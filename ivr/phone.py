"""Asterisk's side of FastAGI, for `didehban call 1482` (a phone in the terminal) and for tests.

It connects to the FastAGI server as Asterisk does, sends the agi_* environment, and answers each
command the way Asterisk answers it: `200 result=...`, `(timeout)`, `result=-1` or `HANGUP` when the
caller hangs up, `511` on a dead channel. What the IVR plays is shown as its Persian text; what the
caller says into a recording is spoken with espeak-ng into a real 8 kHz wav.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from prompts.catalog import load_catalog
from prompts.paths import prompt_id_of

AMI_GREETING = b"Asterisk Call Manager/9.0.0\r\n"


async def ami_actions(reader: asyncio.StreamReader) -> AsyncIterator[dict[str, str]]:
    """Each action a manager client sends, as Asterisk's manager interface reads it: `Key: value`
    lines up to a blank line (the AMI's side, for tests and benchmarks that stand in for Asterisk)."""
    fields: dict[str, str] = {}
    while raw := await reader.readline():
        line = raw.decode().strip()
        if line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        elif fields:
            yield fields
            fields = {}


HANGUP = "HANGUP"  # hang up at this input point (Asterisk sends HANGUP, then 511 to anything else)
SILENCE = "SILENCE"  # say nothing into a recording


@dataclass
class CallTranscript:
    commands: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)  # prompt ids (or paths) in the order played
    variables: dict[str, str] = field(default_factory=dict)
    recordings: list[Path] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds from our reply to the next command
    hung_up: bool = False


def speak_into(path: Path, text: str) -> int:
    """The caller's words as real audio: espeak-ng, then 8 kHz 16-bit mono. Returns samples."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        if shutil.which("espeak-ng") and shutil.which("sox"):
            subprocess.run(
                ["espeak-ng", "-v", "fa", "-w", str(raw), "--stdin"],
                input=text.encode(),
                check=True,
                capture_output=True,
            )
            subprocess.run(
                ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path)],
                check=True,
                capture_output=True,
            )
        else:  # no speech tools: a second of silence, so the file is still a valid recording
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
                w.writeframes(b"\0\0" * 8000)
    with wave.open(str(path)) as w:
        return w.getnframes()


def environment(*, route: str, service: str, caller: str, unique_id: str, port: int) -> dict[str, str]:
    """The block Asterisk 22 sends before the first command."""
    return {
        "agi_network": "yes",
        "agi_network_script": route,
        "agi_request": f"agi://127.0.0.1:{port}/{route}",
        "agi_channel": f"PJSIP/caller-{unique_id}",
        "agi_language": "fa",
        "agi_type": "PJSIP",
        "agi_uniqueid": unique_id,
        "agi_version": "22.0.0",
        "agi_callerid": caller or "unknown",
        "agi_calleridname": "unknown",
        "agi_callingpres": "0",
        "agi_dnid": service,
        "agi_rdnis": "unknown",
        "agi_context": f"hotline-{service}",
        "agi_extension": service,
        "agi_priority": "4",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140000000000000",
        "agi_arg_1": service,
    }


class AsteriskSide:
    """Answers the FastAGI server's commands. `next_input(kind, detail)` gives the caller's action at
    each point where Asterisk would listen: keys for GET DATA / WAIT FOR DIGIT, words for RECORD FILE
    (or HANGUP / SILENCE); `show(text, path)` sees what is played."""

    def __init__(
        self,
        next_input: Callable[[str, str], str],
        show: Callable[[str, str], None] = lambda _text, _path: None,
        *,
        hangup_at_command: int | None = None,
        canned_recording: Path | None = None,
        keys_over: dict[str, str] | None = None,
    ) -> None:
        self.next_input = next_input
        self.show = show
        # One ready-made wav for every recording, so a load test measures the server, not espeak.
        self.canned_recording = canned_recording
        self.hangup_at_command = hangup_at_command
        # A key the caller presses while a prompt plays (prompt id -> key), once: it stops a prompt
        # that listens for it, as a key typed ahead does.
        self.keys_over = dict(keys_over or {})
        self.transcript = CallTranscript()
        self._catalog = load_catalog()
        self._dead = False
        # Keys typed beyond what a command took wait in the channel, as in Asterisk, and interrupt
        # the next prompt that listens for them.
        self._typeahead = ""
        # Variables the IVR reads back (Read's keys and READSTATUS): none of the dial plan's.
        self._channel_variables: dict[str, str] = {}

    def _describe(self, path: str) -> str:
        prompt_id = prompt_id_of(path)
        if prompt_id.startswith("dyn-"):
            return "(پاسخ پرونده، با صدای خوانده‌شده)"  # the answer's text is never kept on disk
        return self._catalog.get(prompt_id, path)

    def _played(self, path: str, *, listening: bool = True) -> None:
        if not path:  # GET DATA "" only listens: nothing is played
            return
        self.transcript.played.append(prompt_id_of(path))
        self.show(self._describe(path), path)
        if (key := self.keys_over.pop(prompt_id_of(path), "")) and listening:
            self._typeahead += key  # else Asterisk drops it (no escape keys, Playback)

    def reply_to(self, line: str) -> tuple[str, bool]:
        """(reply line, hang up after sending it)."""
        args = shlex.split(line)
        verb = " ".join(args[:2]).upper() if len(args) > 1 else line.upper()
        if self._dead:
            # res_agi still runs the commands marked for dead channels: variables, EXEC (MSet).
            if verb in ("SET VARIABLE", "GET VARIABLE", "GET FULL", "EXEC MSET"):
                return self._run(verb, args)
            if verb.startswith("EXEC"):
                return "200 result=-1", False  # an application on a channel that is gone
            return "511 Command Not Permitted on a dead channel or intercept routine", False
        count = len(self.transcript.commands)
        if self.hangup_at_command is not None and count >= self.hangup_at_command:
            self._dead = True
            return HANGUP, False
        return self._run(verb, args)

    def _run(self, verb: str, args: list[str]) -> tuple[str, bool]:
        if verb == "STREAM FILE":
            escape = args[3] if len(args) > 3 else ""
            self._played(args[2], listening=bool(escape))
            if self._typeahead and self._typeahead[0] in escape:
                key, self._typeahead = self._typeahead[0], self._typeahead[1:]
                return f"200 result={ord(key)} endpos=800", False
            return "200 result=0 endpos=8000", False
        if verb == "GET DATA":
            self._played(args[2])
            max_digits = int(args[4]) if len(args) > 4 else 255
            keys = self._typeahead or self.next_input("keys", args[2])
            self._typeahead = ""
            if keys == HANGUP:
                self._dead = True
                return "200 result=-1", False
            taken, timed_out = self._entry(keys, max_digits)
            return f"200 result={taken}" + (" (timeout)" if timed_out else ""), False
        if verb == "EXEC READ":  # Read(var,a&b&c,maxdigits,options,attempts,timeout)
            return self._read(args[2] if len(args) > 2 else ""), False
        if verb == "GET VARIABLE":
            value = self._channel_variables.get(args[2])
            return ("200 result=0" if value is None else f"200 result=1 ({value})"), False
        if verb == "GET FULL":  # GET FULL VARIABLE evaluates ${...} expressions
            value = re.sub(r"\$\{(\w+)\}", lambda m: self._channel_variables.get(m[1], ""), args[3])
            return f"200 result=1 ({value})", False
        if verb == "WAIT FOR":  # WAIT FOR DIGIT
            keys = self._typeahead or self.next_input("key", "")
            self._typeahead = keys[1:] if keys != HANGUP else ""
            if keys == HANGUP:
                self._dead = True
                return "200 result=-1", False
            return f"200 result={ord(keys[0]) if keys else 0}", False
        if verb == "RECORD FILE":
            path = Path(args[2] + "." + args[3])
            words = self.next_input("record", str(path))
            if words == SILENCE:
                return "200 result=0 (timeout) endpos=0", False
            hang_up = words.startswith(HANGUP)
            text = words[len(HANGUP) :].strip(": ") if hang_up else words
            if self.canned_recording is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.canned_recording, path)
                with wave.open(str(path)) as w:
                    samples = w.getnframes()
            else:
                samples = speak_into(path, text or "سلام")
            self.transcript.recordings.append(path)
            if hang_up:  # what was said stays on disk; the channel is gone
                self._dead = True
                return f"200 result=-1 (hangup) endpos={samples}", False
            return f"200 result=35 (dtmf) endpos={samples}", False
        if verb == "SET VARIABLE":
            self.transcript.variables[args[2]] = args[3] if len(args) > 3 else ""
            return "200 result=1", False
        if verb == "EXEC PLAYBACK":  # files in order, no key stops them (Playback(a&b&c))
            for path in args[2].split("&") if len(args) > 2 else []:
                self._played(path, listening=False)
            return "200 result=0", False
        if verb == "EXEC MSET":  # MSet(A=1,B=2): several channel variables in one command
            for pair in args[2].split(",") if len(args) > 2 else []:
                name, _, value = pair.partition("=")
                self.transcript.variables[name] = value
            return "200 result=0", False
        if verb.startswith("EXEC"):  # dial-plan applications (StopMixMonitor): nothing to simulate
            return "200 result=0", False
        if verb == "ANSWER":
            return "200 result=0", False
        if verb == "HANGUP":
            self._dead = True
            return "200 result=1", True
        return "510 Invalid or unknown command", False

    def _entry(self, keys: str, max_digits: int) -> tuple[str, bool]:
        """(the keys an entry takes, whether it ended by the time-out): it stops at # or at max
        digits, whichever comes first, and the rest stays queued (as GET DATA and Read do)."""
        taken = ""
        for i, key in enumerate(keys):
            if key == "#":
                self._typeahead = keys[i + 1 :]
                return taken, False
            taken += key
            if len(taken) >= max_digits:
                self._typeahead = keys[i + 1 :]
                return taken, False
        return taken, True

    def _read(self, argument: str) -> str:
        """Asterisk's Read: each file plays until a key (keys typed ahead stop the first one), the
        caller listens after the last; the keys and READSTATUS are left in channel variables, and a
        hang-up still returns 0 (READSTATUS=HANGUP)."""
        name, files, max_digits, *_ = [*argument.split(","), "", "", ""]
        paths = files.split("&")
        keys = ""
        for n, path in enumerate(paths):
            self._played(path)
            if self._typeahead or n == len(paths) - 1:
                keys, self._typeahead = self._typeahead or self.next_input("keys", path), ""
                break
        if keys == HANGUP:
            self._dead = True
            taken, status = "", "HANGUP"
        else:
            taken, timed_out = self._entry(keys, int(max_digits or 255))
            status = "TIMEOUT" if timed_out else "OK"
        self._channel_variables.update({name: taken, "READSTATUS": status})
        return "200 result=0"

    async def call(self, host: str, port: int, env: dict[str, str]) -> CallTranscript:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            block = "".join(f"{k}: {v}\n" for k, v in env.items()) + "\n"
            writer.write(block.encode())
            await writer.drain()
            replied_at = time.perf_counter()
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                self.transcript.latencies.append(time.perf_counter() - replied_at)
                line = raw.decode().rstrip("\n")
                self.transcript.commands.append(line)
                reply, close = await asyncio.to_thread(self.reply_to, line)
                if reply == HANGUP:
                    self.transcript.hung_up = True
                    writer.write(b"HANGUP\n")
                    self._dead = True
                else:
                    writer.write(reply.encode() + b"\n")
                    if self._dead:
                        self.transcript.hung_up = True
                await writer.drain()
                replied_at = time.perf_counter()
                if close:
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
        return self.transcript


class Script:
    """Inputs for a non-interactive call: one item per listening point, in order."""

    def __init__(self, items: list[str]) -> None:
        self.items = list(items)

    def __call__(self, kind: str, detail: str) -> str:
        if not self.items:
            return HANGUP  # the script ran out: the caller puts the phone down
        return self.items.pop(0)


def parse_script(text: str) -> list[str]:
    """ "1,1,2,0013542419#,1,say:my words,3" -> items; "say:" words go into a recording."""
    items = []
    for item in text.split(","):
        item = item.strip()
        items.append(item[4:] if item.startswith("say:") else item)
    return items


WORD_PROMPTS = ("digit-", "num-", "ord-", "month-", "and-word", "hour-word", "minute-word")


class Speaker:
    """The terminal phone's loudspeaker: prompt texts on screen (number words joined on one line),
    and the audio itself through sox's `play` when asked and the machine has a sound device."""

    def __init__(self, *, audio: bool = False) -> None:
        self.words: list[str] = []
        self.audio = audio and shutil.which("play") is not None

    def __call__(self, text: str, path: str) -> None:
        if prompt_id_of(path).startswith(WORD_PROMPTS):
            self.words.append(text)
        else:
            self.flush()
            print(f"  🔊 {text}", flush=True)
        if self.audio:
            subprocess.run(["play", "-q", path + ".wav"], capture_output=True, check=False)

    def flush(self) -> None:
        if self.words:
            print(f"  🔊 {' '.join(self.words)}", flush=True)
            self.words = []
