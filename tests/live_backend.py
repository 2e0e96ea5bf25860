"""The backend under a real uvicorn in a thread, for tests that need HTTP from outside the app
(real threads racing, the FastAGI server, a browser, a fuzzer)."""

from __future__ import annotations

import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BackendThread:
    """`with BackendThread(port) as server:` serves `create_app()` on 127.0.0.1:port until the block ends."""

    def __init__(self, port: int | None = None) -> None:
        import uvicorn

        from backend.api.main import create_app

        self.port = port or free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BackendThread:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("backend did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
