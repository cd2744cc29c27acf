"""A small authoritative DNS server for tests, on loopback: UDP and TCP, fed by zone
data written in the test (dnspython's message API builds every answer).

    zone = {"example.com": {"MX": ["10 mx.example.com."]}, "mx.example.com": {"A": ["192.0.2.1"]}}
    with DnsServer(zone, servfail={"broken.test"}, silent={"slow.test"}) as server:
        settings = DnsSettings(nameservers=(server.address,), timeout=timedelta(seconds=1))

Names in `zone` answer for their types (CNAMEs are followed within the zone); a name
that exists only as the parent of others (an empty non-terminal) or without the type
asked is NODATA; any other is NXDOMAIN. `servfail` names answer SERVFAIL; `silent`
names never answer (a timeout). TXT values are plain strings (split into 255-byte
pieces here). UDP answers over 512 bytes are truncated, so the client retries on TCP.
`queries` counts what was asked, by (name, type).
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections import Counter
from collections.abc import Mapping

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT

Zone = Mapping[str, Mapping[str, list[str]]]


class DnsServer:
    def __init__(
        self,
        zone: Zone,
        *,
        servfail: set[str] = frozenset(),  # type: ignore[assignment]
        silent: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        self.zone = {k.lower().rstrip("."): v for k, v in zone.items()}
        self.servfail = {n.lower() for n in servfail}
        self.silent = {n.lower() for n in silent}
        self.queries: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []

    def asked(self, rdtype: str | None = None) -> int:
        """Queries answered or ignored so far, of `rdtype` or of any type. Summed under
        the lock: lookups still in flight (a reader that stopped early) add names to
        `queries` meanwhile, and iterating it then would fail."""
        with self._lock:
            return sum(n for (_, kind), n in self.queries.items() if rdtype in (None, kind))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> DnsServer:
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = server.answer(data, 512)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = self.request.recv(2)
                if len(head) < 2:
                    return
                (size,) = struct.unpack("!H", head)
                data = b""
                while len(data) < size:
                    chunk = self.request.recv(size - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = server.answer(data, 65535)
                if reply is not None:
                    self.request.sendall(struct.pack("!H", len(reply)) + reply)

        for _ in range(50):  # a UDP port whose TCP twin is free too
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
            self.port = udp.server_address[1]
            try:
                tcp = _ThreadingTCP(("127.0.0.1", self.port), Tcp)
                break
            except OSError:
                udp.server_close()
        self._servers = [udp, tcp]
        for s in self._servers:
            s.daemon_threads = True  # type: ignore[attr-defined]
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self._servers:
            s.shutdown()
            s.server_close()

    def answer(self, wire: bytes, limit: int) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries[name, rdtype] += 1
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            self._fill(response, name, rdtype)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response = dns.message.make_response(query)
            response.flags |= dns.flags.TC
            return response.to_wire()

    def _fill(self, response: dns.message.Message, name: str, rdtype: str) -> None:
        for _ in range(8):  # CNAME chains, within the zone
            records = self.zone.get(name)
            if records is None:
                if not any(n.endswith("." + name) for n in self.zone):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                return
            if rdtype in records:
                response.answer.append(_rrset(name, rdtype, records[rdtype]))
                return
            if "CNAME" not in records:
                return
            response.answer.append(_rrset(name, "CNAME", records["CNAME"]))
            name = records["CNAME"][0].lower().rstrip(".")


class _ThreadingTCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        super().server_bind()


def _rrset(name: str, rdtype: str, values: list[str]) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(
        dns.name.from_text(name), dns.rdataclass.IN, dns.rdatatype.from_text(rdtype)
    )
    rrset.update_ttl(60)
    for value in values:
        if rdtype == "TXT":
            data = value.encode()
            pieces = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
            rrset.add(TXT(dns.rdataclass.IN, dns.rdatatype.TXT, pieces))
        else:
            rrset.add(dns.rdata.from_text(dns.rdataclass.IN, rrset.rdtype, value))
    return rrset
