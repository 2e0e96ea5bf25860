"""The FastAGI server: every call a coroutine on one event loop (panoramisk's Application).

Asterisk connects per call (`AGI(agi://host:4573/hotline,1482)`), sends the agi_* block, then
waits for commands. Nothing here may block the loop: the backend client is async, and the SQLite
spool and espeak run in threads.
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
from ivr.flows.hotline import handle_call
from ivr.flows.routes import registered
from ivr.settings import IvrSettings, get_settings
from ivr.spool import Spool, deliver_pending

log = logging.getLogger("ivr.fastagi")

HEADER_TIMEOUT = 10.0
# RECORD FILE may take three minutes; nothing else comes close.
COMMAND_TIMEOUT = 300.0


class FastAgiChannel(Channel):
    def __init__(self, info: CallInfo, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(info)
        self.reader, self.writer = reader, writer

    async def _send(self, command: str) -> Reply:
        try:
            self.writer.write(command.encode() + b"\n")
            await self.writer.drain()
            while True:
                line = await asyncio.wait_for(self.reader.readline(), COMMAND_TIMEOUT)
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
            while True:
                raw = await asyncio.wait_for(reader.readline(), HEADER_TIMEOUT)
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
            await route(request)
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
        self.server: asyncio.Server | None = None
        self.active_calls = 0
        self._delivery: asyncio.Task | None = None

    async def endpoint(self, request: fast_agi.Request) -> None:
        channel = FastAgiChannel(CallInfo.from_environment(request.headers), request.reader, request.writer)
        self.active_calls += 1
        try:
            await handle_call(
                channel, settings=self.settings, client=self.client, spool=self.spool, profiles=self.profiles
            )
        finally:
            self.active_calls -= 1

    async def start(self, host: str | None = None, port: int | None = None) -> asyncio.Server:
        app = HotlineApplication()
        for route in registered():
            app.add_route(route, self.endpoint)
        self.server = await asyncio.start_server(
            app.handler,
            host or self.settings.fastagi_host,
            self.settings.fastagi_port if port is None else port,
        )
        self._delivery = asyncio.create_task(self.deliver_forever())
        return self.server

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def deliver_forever(self, interval: float = 10.0) -> None:
        """Spooled cases go to the backend as soon as it answers again."""
        from ivr.pbx.fallback import ingest_all
        from prompts.render import sweep_spoken_answers

        fallback = self.settings.fallback_dir
        while True:
            try:
                delivered, _ = await deliver_pending(self.spool, self.client)
                if delivered:
                    log.info("delivered %d spooled case(s)", delivered)
                if fallback.is_dir():
                    # Messages the dial plan recorded while no FastAGI server answered.
                    filed, _ = await asyncio.to_thread(ingest_all, self.settings, fallback)
                    if filed:
                        log.info("filed %d fallback message(s) as cases", filed)
                # Answers read aloud are not kept on disk longer than a call needs them.
                await asyncio.to_thread(sweep_spoken_answers)
            except Exception:
                log.exception("spool delivery failed")
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        if self._delivery:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
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
    await server.stop()
