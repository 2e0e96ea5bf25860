"""The FastAGI server: every call a coroutine on one event loop (panoramisk's Application).

Asterisk connects per call (`AGI(agi://host:4573/hotline,1482)`), sends the agi_* block, then
waits for commands. Nothing here may block the loop: the backend client is async, and the SQLite
spool and espeak run in threads. A new case goes to the spool and the caller hears its code at once;
the deliverer (ivr.delivery) sends spooled cases to the backend behind the calls.

Time limits are per call, not per command (one timer a call rather than one a command): a call
whose Asterisk side stops answering ends at CALL_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from panoramisk import fast_agi

from domain.profiles import profiles_in
from ivr.agi import CallerHungUp, Reply, parse_environment, parse_reply
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


class FastAgiChannel(Channel):
    def __init__(self, info: CallInfo, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(info)
        self.reader, self.writer = reader, writer

    async def _send(self, command: str) -> Reply:
        try:
            self.writer.write(command.encode() + b"\n")
            await self.writer.drain()
            while True:
                line = await self.reader.readline()
                text = line.decode(errors="replace")
                if text.startswith("100"):  # "100 result=0 Trying..." comes before the real reply
                    continue
                return parse_reply(text)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError) as exc:
            raise CallerHungUp(f"connection to Asterisk lost: {exc!r}") from exc


class HotlineApplication(fast_agi.Application):
    """panoramisk's Application, with a header read that cannot spin on a closed socket."""

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            lines: list[str] = []
            async with asyncio.timeout(HEADER_TIMEOUT):
                while True:
                    raw = await reader.readline()
                    if not raw:
                        return  # closed before the environment was complete
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    if not line:
                        break
                    lines.append(line)
            headers = parse_environment(lines)
            route = self._route.get(CallInfo.from_environment(headers).route)
            if route is None:
                log.error("no route for %r", headers.get("agi_network_script"))
                return
            request = fast_agi.Request(app=self, headers=headers, reader=reader, writer=writer)
            try:
                async with asyncio.timeout(CALL_TIMEOUT):
                    await route(request)
            except TimeoutError:
                log.warning("a call passed %s s: its connection is closed", CALL_TIMEOUT)
        except TimeoutError:
            log.warning("an AGI client sent no complete environment within %s s", HEADER_TIMEOUT)
        except Exception:
            log.exception("a call failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


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
        self._tasks: list[asyncio.Task] = []

    async def endpoint(self, request: fast_agi.Request) -> None:
        channel = FastAgiChannel(CallInfo.from_environment(request.headers), request.reader, request.writer)
        self.active_calls += 1
        try:
            await handle_call(
                channel,
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
        app = HotlineApplication()
        for route in registered():
            app.add_route(route, self.endpoint)
        self.server = await asyncio.start_server(
            app.handler,
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


async def serve(host: str | None, port: int | None) -> None:
    server = HotlineServer()
    await server.start(host, port)
    log.info("FastAGI server listening on %s:%d", host or server.settings.fastagi_host, server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
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
