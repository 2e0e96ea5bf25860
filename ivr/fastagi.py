"""The FastAGI server: every call a coroutine on one event loop.

Asterisk connects per call (`AGI(agi://host:4573/hotline,1482)`), sends the agi_* block, then
waits for commands. Nothing here may block the loop: the backend client is async, and the SQLite
spool and espeak run in threads. A new case goes to the spool and the caller hears its code at once;
the deliverer (ivr.delivery) sends spooled cases to the backend behind the calls.

Each connection is a plain asyncio.Protocol (AgiConnection) rather than a StreamReader/StreamWriter
pair (as panoramisk's fast_agi.Application uses): a command is one transport write and one future
resolved by data_received, which is most of what a call costs this process (issue 13: <= 5 ms of
CPU a whole call with 1,000 calls on one loop).

Time limits are per call, not per command (one timer a call rather than one a command): a call
whose Asterisk side stops answering ends at CALL_TIMEOUT, an environment block not complete within
HEADER_TIMEOUT closes the connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import importlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from domain.profiles import profiles_in
from ivr.agi import Reply, parse_environment, parse_reply
from ivr.backend_client import BackendClient
from ivr.channel import CallInfo, Channel
from ivr.delivery import Deliverer
from ivr.flows.hotline import handle_call
from ivr.flows.routes import registered
from ivr.pbx.fallback import ingest_all
from ivr.settings import IvrSettings, get_settings
from ivr.spool import Spool
from prompts.render import sweep_spoken_answers

log = logging.getLogger("ivr.fastagi")

HEADER_TIMEOUT = 10.0
# The longest a call may last on this server: menus, a national ID, three recordings of three
# minutes each and their menus fit well inside it.
CALL_TIMEOUT = 1800.0


class AgiConnection(asyncio.Protocol):
    """One Asterisk connection: the agi_* environment, then one reply line per command sent.

    Lines Asterisk sends while no command waits (a `HANGUP` when the caller hangs up) are kept in
    order and answer the next command, as a stream reader would have kept them."""

    def __init__(self, start_call: Callable[[AgiConnection, dict[str, str]], Awaitable[None]]) -> None:
        self._start_call = start_call
        self.transport: asyncio.Transport | None = None
        self._partial = b""
        self._header: list[str] | None = []  # None once the environment is complete
        self._lines: collections.deque[str] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop  # set by connection_made
        self._header_timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # Once a connection: asyncio.get_running_loop() is a getpid() system call on Python 3.11,
        # and a command needs the loop for its reply's future (issue 13: syscalls are the cost).
        self._loop = asyncio.get_running_loop()
        self._header_timer = self._loop.call_later(HEADER_TIMEOUT, self._no_header)

    def data_received(self, data: bytes) -> None:
        if self._partial:
            data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            line = raw.decode(errors="replace").rstrip("\r")
            if self._header is not None:
                if line:
                    self._header.append(line)
                else:
                    self._environment_complete()
            elif not line.startswith("100"):  # "100 result=0 Trying..." comes before the real reply
                self._lines.append(line)
        if self._lines and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._header_timer is not None:
            self._header_timer.cancel()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- the call's side ------------------------------------------------------------------------

    def _environment_complete(self) -> None:
        headers = parse_environment(self._header or [])
        self._header = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self.task = self._loop.create_task(self._run(headers))

    def _no_header(self) -> None:
        if self._header is not None and self.transport is not None:
            log.warning("an AGI client sent no complete environment within %s s", HEADER_TIMEOUT)
            self.transport.close()

    async def _run(self, headers: dict[str, str]) -> None:
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                await self._start_call(self, headers)
        except TimeoutError:
            log.warning("a call passed %s s: its connection is closed", CALL_TIMEOUT)
        except Exception:
            log.exception("a call failed")
        finally:
            if self.transport is not None:
                self.transport.close()

    async def command(self, command: str) -> str:
        """Write one command, return its reply line ("" once the connection is closed)."""
        if self._closed or self.transport is None or self.transport.is_closing():
            return ""
        self.transport.write(command.encode() + b"\n")
        while not self._lines:
            if self._closed:
                return ""
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._lines.popleft()


class FastAgiChannel(Channel):
    def __init__(self, info: CallInfo, connection: AgiConnection) -> None:
        super().__init__(info)
        self.connection = connection

    async def _send(self, command: str) -> Reply:
        # parse_reply raises CallerHungUp on "" (the connection closed) and on HANGUP.
        return parse_reply(await self.connection.command(command))


def _import_lazy_modules() -> None:
    """Modules the HTTP client imports on its first request (anyio picks its event-loop backend
    then): imported at start-up, or the first delivery would freeze every call for their import."""
    for name in ("anyio._backends._asyncio", "anyio._core._sockets"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


class HotlineServer:
    def __init__(self, settings: IvrSettings | None = None) -> None:
        # No node answers calls without its own prefix and spool key (NodeNotConfigured).
        self.settings = (settings or get_settings()).require_node()
        self.profiles = profiles_in(str(self.settings.services_dir))
        self.client = BackendClient(self.settings)
        self.spool = Spool(self.settings.spool_dir, self.settings.node_prefix, self.settings.spool_key)
        s = self.settings
        self.deliverer = Deliverer(
            self.spool,
            self.client,
            batch_size=s.delivery_batch_size,
            concurrency=s.delivery_concurrency,
            backoff_min=s.delivery_backoff_seconds,
            backoff_max=s.delivery_backoff_max_seconds,
        )
        self.server: asyncio.Server | None = None
        self.active_calls = 0
        self.routes: frozenset[str] = frozenset()
        self._tasks: list[asyncio.Task] = []

    async def answer(self, connection: AgiConnection, headers: dict[str, str]) -> None:
        """One call, from its environment block to its end (the connection closes after)."""
        info = CallInfo.from_environment(headers)
        if info.route not in self.routes:
            log.error("no route for %r", headers.get("agi_network_script"))
            return
        self.active_calls += 1
        try:
            await handle_call(
                FastAgiChannel(info, connection),
                settings=self.settings,
                client=self.client,
                spool=self.spool,
                profiles=self.profiles,
                on_spooled=self.deliverer.wake,
            )
        finally:
            self.active_calls -= 1

    async def start(self, host: str | None = None, port: int | None = None) -> asyncio.Server:
        # Before the first call, not during one (see BackendClient.open).
        await self.client.open()
        await asyncio.to_thread(_import_lazy_modules)
        self.routes = frozenset(registered())
        self.server = await asyncio.get_running_loop().create_server(
            lambda: AgiConnection(self.answer),
            host or self.settings.fastagi_host,
            self.settings.fastagi_port if port is None else port,
        )
        # Cases left in the spool by an earlier run (or by process-per-call scripts) go out at once.
        self.deliverer.wake()
        self._tasks = [
            asyncio.create_task(self.deliverer.run_forever()),
            asyncio.create_task(self.housekeep_forever()),
        ]
        return self.server

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def deliver_now(self) -> tuple[int, int]:
        """Every spooled case to the backend now (after the deliverer's round in progress, if any)."""
        return await self.deliverer.deliver_now()

    async def housekeep_forever(self, interval: float = 10.0) -> None:
        """Fallback recordings become cases; spoken answers leave the disk."""
        fallback = self.settings.fallback_dir
        while True:
            try:
                if fallback.is_dir():
                    # Messages the dial plan recorded while no FastAGI server answered.
                    filed, _ = await asyncio.to_thread(ingest_all, self.settings, fallback)
                    if filed:
                        log.info("filed %d fallback message(s) as cases", filed)
                # Answers read aloud are not kept on disk longer than a call needs them.
                await asyncio.to_thread(sweep_spoken_answers)
            except Exception:
                log.exception("housekeeping failed")
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.server:
            self.server.close()
            await self.server.wait_closed()
        await self.client.close()
        self.spool.close()


def event_loop_runner() -> Callable[[Awaitable[None]], None]:
    """asyncio.run on uvloop where it is installed (uvicorn[standard] brings it): its loop, sockets
    and callbacks are C, so each AGI command (a read, a write, a coroutine step) costs this process
    less CPU than on the pure-Python selector loop (issue 13: CPU per call)."""
    try:
        import uvloop
    except ImportError:  # not on this platform: the standard loop serves the same calls
        return asyncio.run
    return uvloop.run


async def serve(host: str | None, port: int | None) -> None:
    server = HotlineServer()
    await server.start(host, port)
    # Everything loaded so far (modules, settings, profiles) lives as long as the process: out of
    # the collector's sight, so a collection during the calls walks only what the calls made.
    gc.collect()
    gc.freeze()
    # A thread holding the GIL (the spool's writer sealing a case, the deliverer opening a batch)
    # keeps the loop, and so every call's next command, waiting up to this long (default 5 ms).
    sys.setswitchinterval(0.001)
    loop = asyncio.get_running_loop()
    log.info(
        "FastAGI server listening on %s:%d (event loop: %s)",
        host or server.settings.fastagi_host,
        server.port,
        type(loop).__module__.split(".")[0],
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Let calls in progress finish (up to a minute) before closing.
    server.server.close()
    for _ in range(60):
        if not server.active_calls:
            break
        await asyncio.sleep(1)
    # One last round for the cases of the last calls; what the backend does not take now stays in
    # the spool for the next start.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.deliver_now(), 15)
    await server.stop()
