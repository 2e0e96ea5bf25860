"""Where the process-per-call AGI script's CPU goes (issue 13 goal 4b: at most 150 ms a whole call).

    PYTHONPATH=. .venv/bin/python benchmarks/agi_script_cpu.py [--rounds 20] [--no-ami]

Each round runs, one after another (so every stage sees the same load), a bare interpreter, the
interpreter with `site` (the venv's .pth files), the standard library modules a call imports, the
project's modules a call imports, and one whole new-case call through `python -m agi_scripts.hotline`
(its commands answered as Asterisk would, the recording mute answered by a stand-in AMI unless
--no-ami). Printed: the mean CPU (user + system of the child, from getrusage) of each stage, and what
each adds to the one before. The modules are those a call really imports, found by a first call.
No backend is needed: a new case goes to the node's spool, never to the backend.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ivr.phone import AMI_GREETING, AsteriskSide, Script, environment  # noqa: E402

PROJECT = ("agi_scripts", "ivr", "domain", "prompts")
LIST_MODULES = """
import json, runpy, sys
out = sys.argv.pop(1)
try:
    runpy.run_module("agi_scripts.hotline", run_name="__main__", alter_sys=True)
finally:
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def stand_in_ami() -> int:
    """A manager interface on a thread answering every action Success (Login, MixMonitorMute)."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        conn.sendall(AMI_GREETING)
        buffer, fields = b"", {}
        while chunk := conn.recv(4096):
            buffer += chunk
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                if line:
                    key, _, value = line.decode().partition(":")
                    fields[key.strip()] = value.strip()
                elif fields:
                    reply = f"Response: Success\r\nActionID: {fields.get('ActionID', '')}\r\n\r\n"
                    conn.sendall(reply.encode())
                    fields = {}

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


def cpu_of(run) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def new_case_call(env: dict[str, str], cwd: Path, canned: Path, nid: str, unique_id: str, command) -> dict:
    side = AsteriskSide(Script(["1", "1", "2", f"{nid}#", "1", "words", "3", ""]), canned_recording=canned)
    proc = subprocess.Popen(
        [*command, "1482"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=cwd,
        bufsize=1,
    )
    block = environment(route="hotline", service="1482", caller="09121234567", unique_id=unique_id, port=0)
    block = {k: v for k, v in block.items() if k not in ("agi_network", "agi_network_script")}
    proc.stdin.write("".join(f"{k}: {v}\n" for k, v in block.items()) + "\n")
    proc.stdin.flush()
    while line := proc.stdout.readline():
        side.transcript.commands.append(line.rstrip("\n"))
        reply, close = side.reply_to(line.rstrip("\n"))
        proc.stdin.write(reply + "\n")
        proc.stdin.flush()
        if close:
            break
    proc.stdin.close()
    proc.wait(30)
    if side.transcript.variables.get("DIDEHBAN_OUTCOME") != "registered":
        raise SystemExit(f"the call did not register a case: {side.transcript.variables}")
    return {
        "commands": len(side.transcript.commands),
        "stopped": "StopMixMonitor" in str(side.transcript.commands),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-ami", action="store_true", help="nobody at the AMI port: the mute fails")
    args = parser.parse_args()
    from cryptography.fernet import Fernet

    from domain.national_id import with_check_digit

    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        ami_port = 1 if args.no_ami else stand_in_ami()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIDEHBAN_")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "DIDEHBAN_ENV_FILE": os.devnull,
                "DIDEHBAN_NODE_PREFIX": "21",
                "DIDEHBAN_SPOOL_KEY": Fernet.generate_key().decode(),
                "DIDEHBAN_SPOOL_DIR": str(tmp_path / "spool"),
                "DIDEHBAN_RECORDINGS_DIR": str(tmp_path / "recordings"),
                "DIDEHBAN_PROMPTS_DIR": os.environ.get("DIDEHBAN_PROMPTS_DIR") or str(ROOT / "prompts"),
                "DIDEHBAN_AMI_HOST": "127.0.0.1",
                "DIDEHBAN_AMI_PORT": str(ami_port),
                "DIDEHBAN_AMI_SECRET": "bench",
            }
        )
        canned = tmp_path / "message.wav"
        sox = ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(canned), "synth", "5", "pinknoise"]
        subprocess.run([*sox, "vol", "0.3"], check=True)
        # As installed (scripts/bootstrap.sh byte-compiles the project).
        subprocess.run([python, "-m", "compileall", "-q", *PROJECT], cwd=ROOT, check=True)
        nid = with_check_digit("001354241")
        # The first call after the profiles change reads their YAML and keeps a copy (as in
        # production, once); the next tells which modules every later call imports.
        new_case_call(env, tmp_path, canned, nid, "bench-warm", [python, "-m", "agi_scripts.hotline"])
        listed = tmp_path / "modules.json"
        first = new_case_call(
            env, tmp_path, canned, nid, "bench-0", [python, "-c", LIST_MODULES, str(listed)]
        )
        at_start = json.loads(
            subprocess.run(
                [python, "-c", "import sys, json; print(json.dumps(sorted(sys.modules)))"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        imported = sorted(set(json.loads(listed.read_text())) - set(at_start) - {"runpy"})
        ours = [m for m in imported if m.split(".")[0] in PROJECT]
        stdlib = [m for m in imported if m not in ours and "." not in m and not m.startswith("_")]
        stdlib = [m for m in stdlib if m != "cython_runtime"]
        stages = [
            (
                "interpreter (python -S)",
                lambda: subprocess.run([python, "-S", "-c", "pass"], env=env, check=True),
            ),
            ("+ site (.pth files)", lambda: subprocess.run([python, "-c", "pass"], env=env, check=True)),
            (
                f"+ {len(stdlib)} stdlib modules",
                lambda: subprocess.run([python, "-c", "import " + ",".join(stdlib)], env=env, check=True),
            ),
            (
                f"+ {len(ours)} project modules",
                lambda: subprocess.run(
                    [python, "-c", "import " + ",".join(stdlib + ours)], env=env, check=True
                ),
            ),
        ]
        totals = [0.0] * (len(stages) + 1)
        loads = []
        for i in range(args.rounds):
            for j, (_, run) in enumerate(stages):
                totals[j] += cpu_of(run)
            totals[-1] += cpu_of(
                lambda i=i: new_case_call(
                    env, tmp_path, canned, nid, f"bench-{i + 1}", [python, "-m", "agi_scripts.hotline"]
                )
            )
            loads.append(os.getloadavg()[0])
        means = [t / args.rounds * 1000 for t in totals]
        mute_was = "failed" if first["stopped"] else "answered"
        names = [name for name, _ in stages] + [
            f"+ the call ({first['commands']} AGI commands, mute {mute_was})"
        ]
        print(
            f"process-per-call script, {args.rounds} rounds; load average {min(loads):.2f}-{max(loads):.2f}"
        )
        print(f"{'stage':52} {'CPU ms':>8} {'adds ms':>8}")
        for k, (name, mean) in enumerate(zip(names, means, strict=True)):
            adds = mean - means[k - 1] if k else mean
            print(f"{name:52} {mean:8.1f} {adds:8.1f}")
        print(f"stdlib modules: {', '.join(stdlib)}")
        print(
            "never imported:",
            ", ".join(m for m in ("asyncio", "ssl", "dataclasses", "inspect") if m not in imported),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
