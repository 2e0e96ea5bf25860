"""AGI turnaround seen on the wire: packets between Asterisk and the FastAGI server, timed by the kernel.

Asterisk's own AGI debug lines (`agi set debug on`) cost Asterisk CPU and overflow its log queue at
500 calls, and they carry keys, national IDs and tracking codes. This reads the same conversation
from the loopback interface instead (a packet socket, as root, filtered in the kernel to the FastAGI
port), so neither Asterisk nor the FastAGI server does any extra work. Per call (TCP connection):

- FastAGI turnaround: from Asterisk's reply to a command (or the end of its agi_* environment) to
  the next command the server sends: what the old debug measurement gave, without Asterisk's log.
- Asterisk turnaround: from a command to Asterisk's reply, for the commands that return at once
  (ANSWER, SET/GET VARIABLE, EXEC of a non-media application...): how long a loaded Asterisk takes
  to read and answer. Commands that play, record or wait for keys are left out (their time is the
  caller's).

Only the command's verb is kept, in memory: nothing said on the line is written anywhere.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import threading
from dataclasses import dataclass, field

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4
# Commands whose reply comes when the caller has listened, spoken or typed: not Asterisk's time.
MEDIA_VERBS = ("STREAM", "GET DATA", "RECORD", "WAIT", "SAY", "CONTROL", "GET OPTION", "EXEC")
# EXEC of these returns at once (the whole-call recording's mute and stop, dial-plan bookkeeping).
QUICK_EXEC = ("EXEC STOPMIXMONITOR", "EXEC MIXMONITOR", "EXEC SET", "EXEC NOOP")


def _tcp_port_filter(port: int) -> bytes:
    """Classic BPF for "IPv4, TCP, unfragmented, source or destination port `port`" on an
    Ethernet-framed interface (loopback is one for packet sockets)."""
    code = [
        (0x28, 0, 0, 12),  # ldh [12]: ethertype
        (0x15, 0, 10, 0x0800),  # IPv4, else drop
        (0x30, 0, 0, 23),  # ldb [23]: IP protocol
        (0x15, 0, 8, 6),  # TCP, else drop
        (0x28, 0, 0, 20),  # ldh [20]: fragment offset
        (0x45, 6, 0, 0x1FFF),  # a later fragment: drop
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf): IP header length
        (0x48, 0, 0, 14),  # ldh [x+14]: source port
        (0x15, 2, 0, port),  # ours: accept
        (0x48, 0, 0, 16),  # ldh [x+16]: destination port
        (0x15, 0, 1, port),  # ours: accept, else drop
        (0x06, 0, 0, 0x40000),  # accept
        (0x06, 0, 0, 0),  # drop
    ]
    return b"".join(struct.pack("HBBI", *ins) for ins in code)


@dataclass
class _Connection:
    buffer: bytes = b""
    last_reply: float | None = None  # when Asterisk last finished speaking (reply or environment)
    pending: tuple[str, float] | None = None  # a command sent and not yet answered: (verb, when)


class _LoopbackCapture:
    """TCP packets to and from `port` on loopback, each with the kernel's time, handed to _packet
    in a daemon thread while it runs. Needs root."""

    port: int

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        prog = _tcp_port_filter(self.port)
        self._prog = ctypes.create_string_buffer(prog, len(prog))  # alive while the kernel copies it
        buf = struct.pack("HL", len(prog) // 8, ctypes.addressof(self._prog))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, buf)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._connections: dict[int, _Connection] = {}
        self._thread = threading.Thread(target=self._run, daemon=True, name=type(self).__name__)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, address = self._sock.recvmsg(65536, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] == PACKET_OUTGOING:  # loopback shows each packet twice: take it once
                continue
            at = next(
                (
                    sec + nsec / 1e9
                    for level, kind, raw in ancillary
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS
                    for sec, nsec in [struct.unpack("qq", raw[:16])]
                ),
                None,
            )
            if at is not None:
                self._packet(data, at)

    def _packet(self, frame: bytes, at: float) -> None:
        raise NotImplementedError


def _tcp(frame: bytes) -> tuple[int, int, bytes, bool]:
    """(source port, destination port, payload, SYN) of an Ethernet-framed IPv4 TCP packet."""
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    src, dst = struct.unpack("!HH", tcp[:4])
    return src, dst, tcp[(tcp[12] >> 4) * 4 :], bool(tcp[13] & 0x02)


@dataclass
class AgiWire(_LoopbackCapture):
    """Capture AGI turnarounds on loopback while it runs (a daemon thread). Needs root."""

    port: int
    fastagi: list[float] = field(default_factory=list)  # seconds
    # The FastAGI turnarounds again, by the verb of the command that ended them ("GET DATA" after a
    # slow one: the flow was busy before asking for the national ID, e.g. muting the recording).
    fastagi_by_verb: dict[str, list[float]] = field(default_factory=dict)
    asterisk: list[float] = field(default_factory=list)
    packets: int = 0

    def _packet(self, frame: bytes, at: float) -> None:
        src, dst, payload, syn = _tcp(frame)
        asterisk_port = src if dst == self.port else dst
        if syn:  # a new call on a port an old one may have used
            self._connections.pop(asterisk_port, None)
            return
        if not payload:
            return
        self.packets += 1
        from_asterisk = dst == self.port
        conn = self._connections.setdefault(asterisk_port, _Connection())
        if from_asterisk:
            conn.buffer += payload
            *lines, conn.buffer = conn.buffer.split(b"\n")
            for line in lines:
                # The environment ends with a blank line; a reply is "200 result=..." (or 5xx);
                # "100 result=0 Trying..." comes before the real reply of some commands.
                if line.strip() == b"" or (line[:3].isdigit() and not line.startswith(b"100")):
                    if conn.pending is not None and line.strip():
                        verb, sent = conn.pending
                        if not verb.startswith(MEDIA_VERBS) or verb.startswith(QUICK_EXEC):
                            self.asterisk.append(at - sent)
                        conn.pending = None
                    conn.last_reply = at
        else:
            verb = b" ".join(payload.split(b" ", 2)[:2]).strip().decode(errors="replace").upper()
            if conn.last_reply is not None:
                self.fastagi.append(at - conn.last_reply)
                self.fastagi_by_verb.setdefault(verb, []).append(at - conn.last_reply)
                conn.last_reply = None
            conn.pending = (verb, at)


@dataclass
class MuteWire(_LoopbackCapture):
    """How long Asterisk's manager (AMI) takes to answer the FastAGI server's MixMonitorMute actions
    (ivr.ami.mute: "ActionID: didehban-N"), read on loopback. The call-log listener's events on the
    same port are skipped unread (they never carry such an ActionID)."""

    port: int
    answered: list[float] = field(default_factory=list)  # seconds, action to response
    sent: dict[bytes, float] = field(default_factory=dict)  # ActionIDs not answered (yet)

    def _packet(self, frame: bytes, at: float) -> None:
        _src, dst, payload, _syn = _tcp(frame)
        start = 0
        while (start := payload.find(b"ActionID: didehban-", start)) >= 0:
            end = payload.find(b"\r", start)
            action_id = payload[start + 10 : end if end >= 0 else None]
            start += 10
            if dst == self.port:
                self.sent[action_id] = at
            elif action_id in self.sent:
                self.answered.append(at - self.sent.pop(action_id))
