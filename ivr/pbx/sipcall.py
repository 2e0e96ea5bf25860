"""Real SIP calls with sipp (`didehban pbx call`, the PBX tests and the load benchmark): a scenario
built from the caller's actions, and the caller's voice as an RTP (PCMU) pcap made from espeak-ng
speech. sipp exits 0 only if the call went as scripted."""

from __future__ import annotations

import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def speech_pcap(text: str, out: Path, *, lead_silence: float = 0.0, voice: str = "fa") -> float:
    """The caller's words (spoken by espeak-ng's `voice`) as 20 ms PCMU RTP packets in a pcap sipp
    can play. Returns seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        wav, raw = Path(tmp) / "s.wav", Path(tmp) / "s.ul"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(wav), "-r", "8000", "-c", "1", "-t", "ul", str(raw), "pad", str(lead_silence)],
            check=True,
            capture_output=True,
        )
        audio = raw.read_bytes()
    frames = [audio[i : i + 160].ljust(160, b"\xff") for i in range(0, len(audio), 160)]
    src, dst = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    with out.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for seq, payload in enumerate(frames):
            rtp = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, 0x5EED) + payload
            udp = struct.pack("!HHHH", 16000, 16002, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0, src, dst)
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            micros = seq * 20_000
            f.write(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)))
            f.write(frame)
    return len(frames) * 0.02


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Background:
    """Audio the caller's phone sends while the call goes on (a line is never digitally silent)."""

    pcap: Path


@dataclass(frozen=True)
class Keys:
    keys: str
    gap: float = 0.35


@dataclass(frozen=True)
class Speak:
    pcap: Path
    seconds: float


HEADERS = """      From: "CI caller" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>{to_tag}
      Call-ID: [call_id]
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70"""


def _send(body: str, *, retransmit: bool = True) -> str:
    """Requests that expect a response are retransmitted over UDP; an ACK or a response is not."""
    attrs = ' retrans="500"' if retransmit else ""
    return f"  <send{attrs}>\n    <![CDATA[\n{body}\n    ]]>\n  </send>\n"


def scenario(
    actions: list, *, dtmf: str = "rfc4733", caller_hangs_up: bool = False, bye_timeout_ms: int = 120_000
) -> str:
    """A UAC scenario: INVITE, the actions, then wait for Asterisk's BYE (or send ours)."""
    parts = ['<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="didehban call">\n']
    parts.append(
        _send(f"""      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{HEADERS.format(to_tag="")}
      CSeq: 1 INVITE
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 96
      a=rtpmap:0 PCMU/8000
      a=rtpmap:96 telephone-event/8000
      a=fmtp:96 0-16
      a=ptime:20
      a=sendrecv""")
    )
    parts.append(
        '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
        '  <recv response="183" optional="true"/>\n  <recv response="200" rtd="true" rrs="true"/>\n'
    )
    parts.append(
        _send(
            f"""      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{HEADERS.format(to_tag="[peer_tag_param]")}
      CSeq: 1 ACK
      Content-Length: 0""",
            retransmit=False,
        )
    )
    cseq = 2
    for action in actions:
        if isinstance(action, Wait):
            parts.append(f'  <pause milliseconds="{int(action.seconds * 1000)}"/>\n')
        elif isinstance(action, Background):
            parts.append(f'  <nop><action><exec play_pcap_audio="{action.pcap}"/></action></nop>\n')
        elif isinstance(action, Speak):
            parts.append(f'  <nop><action><exec play_pcap_audio="{action.pcap}"/></action></nop>\n')
            parts.append(f'  <pause milliseconds="{int(action.seconds * 1000) + 200}"/>\n')
        elif isinstance(action, Keys):
            if dtmf == "rfc4733":
                # One play_dtmf for the whole string: sipp spaces the events itself (320 ms a key).
                # Separate play_dtmf actions in quick succession drop keys, and replaying a DTMF pcap
                # repeats its RTP timestamps, so Asterisk takes a second press of a key as a duplicate.
                parts.append(f'  <nop><action><exec play_dtmf="{action.keys},160"/></action></nop>\n')
                parts.append(f'  <pause milliseconds="{int(len(action.keys) * 320 + 300)}"/>\n')
                continue
            for key in action.keys:
                parts.append(
                    _send(f"""      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{HEADERS.format(to_tag="[peer_tag_param]")}
      CSeq: {cseq} INFO
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={key}
      Duration=160""")
                )
                parts.append('  <recv response="200"/>\n')
                parts.append(f'  <pause milliseconds="{int(action.gap * 1000)}"/>\n')
                cseq += 1
    if caller_hangs_up:
        parts.append(
            _send(f"""      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{HEADERS.format(to_tag="[peer_tag_param]")}
      CSeq: {cseq} BYE
      Content-Length: 0""")
        )
        parts.append('  <recv response="200" crlf="true"/>\n')
    else:
        parts.append(f'  <recv request="BYE" timeout="{bye_timeout_ms}"/>\n')
        parts.append(
            _send(
                """      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Content-Length: 0""",
                retransmit=False,
            )
        )
    parts.append("</scenario>\n")
    return "".join(parts)


def sipp_command(
    scenario_file: Path,
    users_file: Path,
    *,
    service: str,
    sip_port: int,
    control_port: int,
    media_port: int,
    timeout_s: int = 180,
    calls: int = 1,
    rate: int = 10,
) -> list[str]:
    """sipp in the foreground (its exit code is the verdict), on loopback, with its own ports."""
    return [
        "sipp",
        f"127.0.0.1:{sip_port}",
        "-sf",
        str(scenario_file),
        "-inf",
        str(users_file),
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-p",
        "0",
        "-mi",
        "127.0.0.1",
        "-mp",
        str(media_port),
        "-cp",
        str(control_port),
        "-m",
        str(calls),
        "-l",
        str(calls),
        "-r",
        str(rate),
        "-nostdin",
        "-timeout",
        f"{timeout_s}s",
        "-trace_err",
        "-error_file",
        str(scenario_file.with_suffix(".errors")),
    ]


def write_call_files(
    xml: str, workdir: Path, *, user: str, calls: int = 1, name: str = "call"
) -> tuple[Path, Path]:
    """The scenario and the injection file that gives each call its SIP user (tester, tester-info)."""
    scenario_file, users_file = workdir / f"{name}.xml", workdir / f"{name}-users.csv"
    scenario_file.write_text(xml)
    users_file.write_text("SEQUENTIAL\n" + f"{user};\n" * calls)
    return scenario_file, users_file


def run_sipp(
    xml: str,
    *,
    service: str,
    user: str,
    sip_port: int,
    workdir: Path,
    control_port: int,
    media_port: int,
    timeout_s: int = 180,
    calls: int = 1,
    rate: int = 10,
) -> subprocess.CompletedProcess:
    scenario_file, users_file = write_call_files(
        xml, workdir, user=user, calls=calls, name=f"call-{control_port}"
    )
    argv = sipp_command(
        scenario_file,
        users_file,
        service=service,
        sip_port=sip_port,
        control_port=control_port,
        media_port=media_port,
        timeout_s=timeout_s,
        calls=calls,
        rate=rate,
    )
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s + 30, cwd=workdir)


def actions_from_script(script: str, workdir: Path) -> list:
    """`didehban call`-style inputs ("1,1,2,0013542419#,1,say:words,3") as timed SIP actions: a key
    item is sent and followed by a short pause; a say: item waits for the recording prompt and beep,
    then speaks."""
    from ivr.pbx.timing import total

    actions: list = [Wait(1.5)]
    for n, item in enumerate(script.split(",")):
        item = item.strip()
        if item.startswith("say:"):
            pcap = workdir / f"say-{n}.pcap"
            seconds = speech_pcap(item[4:], pcap)
            actions += [
                Wait(total("record-instructions", "beep") + 0.8),
                Speak(pcap, seconds),
                Keys("#"),
                Wait(1.0),
            ]
        elif item:
            actions += [Keys(item), Wait(1.2)]
        else:
            actions.append(Wait(6.0))  # let a menu time out
    return actions
