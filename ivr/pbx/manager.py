"""`didehban pbx up|down|status|cli`: Debian's Asterisk in a Debian sid root on this machine.

Debian 12 has no Asterisk package and sid's binary needs sid's libraries, so the PBX runs in a small
sid root built with mmdebstrap (about 100 MB of packages, built once and reused). The runtime folder
(config, logs, spool) is bind-mounted into the root at /srv/ivr, and so are the recordings and the
prompt audio, which the FastAGI server on this host reads and writes: the same files, two views.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.cpu_priority import set_priority
from ivr.pbx import config
from ivr.settings import IvrSettings, get_settings

INSIDE = "/srv/ivr"  # where the runtime folder appears inside the root
MODDIR = "/usr/lib/x86_64-linux-gnu/asterisk/modules"


class PbxError(RuntimeError):
    pass


def _run(argv: list[str], *, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)


@dataclass
class Pbx:
    settings: IvrSettings
    # Development and tests only: the unauthenticated test phones (asterisk_conf/dev/).
    test_phones: bool = False

    @classmethod
    def from_settings(cls, *, test_phones: bool = False) -> Pbx:
        return cls(get_settings(), test_phones=test_phones)

    # --- folders -----------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.settings.pbx_root

    @property
    def runtime(self) -> Path:
        return self.settings.pbx_runtime

    @property
    def fallback_dir(self) -> Path:
        return self.settings.fallback_dir

    @property
    def pid_file(self) -> Path:
        return self.runtime / "run" / "asterisk.pid"

    def _mounts(self) -> list[tuple[Path | None, Path]]:
        """(source, target inside the root); None source is /proc."""
        srv = self.root / INSIDE.lstrip("/")
        audio = self.settings.prompts_dir / "audio"
        return [
            (None, self.root / "proc"),
            (self.runtime, srv),
            (self.settings.recordings_dir, srv / "recordings"),
            (audio, srv / "sounds"),
        ]

    # --- building ----------------------------------------------------------------------------
    def root_ready(self) -> bool:
        return (self.root / "usr/sbin/asterisk").exists()

    def build_root(self) -> None:
        """Build the sid root with Debian's asterisk package, once. A half-built root is never used:
        it is built beside and renamed when complete."""
        if self.root_ready():
            return
        if shutil.which("mmdebstrap") is None:
            raise PbxError("mmdebstrap is not installed: apt-get install mmdebstrap (scripts/bootstrap.sh)")
        if os.geteuid() != 0:
            raise PbxError("building the PBX root needs root (mmdebstrap and chroot)")
        partial = self.root.with_name(self.root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        print("building the Debian sid root with Asterisk (once; about a minute)...", flush=True)
        result = subprocess.run(
            [
                "mmdebstrap",
                "--variant=apt",
                '--aptopt=Acquire::Check-Valid-Until "false"',
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--include=asterisk",
                "sid",
                str(partial),
                self.settings.debian_mirror,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise PbxError(f"mmdebstrap failed:\n{result.stderr[-2000:]}")
        partial.rename(self.root)

    def install(self) -> None:
        """The project's config and the runtime folders, fresh from asterisk_conf/ every time."""
        for sub in ("etc", "db", "spool/fallback", "run", "log/cdr-csv", "cache"):
            (self.runtime / sub).mkdir(parents=True, exist_ok=True)
        # Fallback messages and their callers' numbers: nobody else's to read.
        self.fallback_dir.chmod(0o700)
        self.settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        (self.settings.prompts_dir / "audio" / "fa").mkdir(parents=True, exist_ok=True)
        config.install(
            self.settings, self.runtime / "etc", srv=INSIDE, moddir=MODDIR, test_phones=self.test_phones
        )

    # --- mounts ------------------------------------------------------------------------------
    @staticmethod
    def _is_mount(path: Path) -> bool:
        return _run(["mountpoint", "-q", str(path)], check=False).returncode == 0

    def mount(self) -> None:
        for source, target in self._mounts():
            target.mkdir(parents=True, exist_ok=True)
            if self._is_mount(target):
                continue
            if source is None:
                _run(["mount", "-t", "proc", "proc", str(target)])
            else:
                _run(["mount", "--bind", str(source), str(target)])

    def unmount(self) -> None:
        for _source, target in reversed(self._mounts()):
            if self._is_mount(target):
                _run(["umount", "-l", str(target)], check=False)

    # --- running -----------------------------------------------------------------------------
    def _asterisk(self, *args: str) -> list[str]:
        return ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", f"{INSIDE}/etc/asterisk.conf", *args]

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def cli(self, command: str, timeout: float = 30) -> str:
        result = _run(self._asterisk("-rx", command), timeout=timeout, check=False)
        if result.returncode != 0:
            raise PbxError(
                f"asterisk -rx {command!r} failed: {result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout

    def up(self, *, timeout: float = 60) -> None:
        """Build (once), install the config, mount, start, and wait until fully booted. Idempotent."""
        self.build_root()
        self.install()
        self.mount()
        if self.running():
            self.cli("core reload")
            return
        log = (self.runtime / "log" / "console.log").open("ab")
        nice = self.settings.pbx_nice
        if not -20 <= nice <= 19:
            raise PbxError(f"DIDEHBAN_PBX_NICE is {nice}: a nice value is -20 (first) to 19 (last)")
        # -f: stay in the foreground (so we own the process); -n: no colour.
        process = subprocess.Popen(
            self._asterisk("-f", "-n"),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o077,  # what Asterisk writes (recordings, fallback sidecars) is private
            # Before Asterisk starts its threads, which inherit it (ivr.cpu_priority); not whatever
            # priority the command that started us had. This process has no threads of its own.
            preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, nice),
        )
        self.pid_file.write_text(str(process.pid))
        if not set_priority(process.pid, nice):  # and its session's group
            print(f"could not give the PBX the CPU priority {nice} (DIDEHBAN_PBX_NICE)", flush=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PbxError(f"asterisk exited at start ({process.returncode}); see {log.name}")
            try:
                # Blocks until every module is loaded; fails while the control socket is not up yet.
                self.cli("core waitfullybooted", timeout=10)
                return
            except (PbxError, subprocess.TimeoutExpired):
                time.sleep(0.2)
        raise PbxError("asterisk did not finish booting in time")

    def down(self, *, timeout: float = 20) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(PbxError, subprocess.TimeoutExpired):
                self.cli("core stop now", timeout=10)
            deadline = time.monotonic() + timeout
            while self.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.pid() is not None:
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.pid_file.unlink()
        self.unmount()

    def status(self) -> str:
        if not self.root_ready():
            return "PBX root not built (didehban pbx up builds it)"
        if not self.running():
            return "PBX stopped"
        uptime = self.cli("core show uptime").strip()
        return f"PBX running (pid {self.pid()})\n{uptime}"
