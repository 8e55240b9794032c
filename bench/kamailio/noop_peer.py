"""The no-op evapi peer: the baseline an external charging engine is compared with.

Answers every CGR_AUTH_REQUEST with MaxUsage -1 and ignores everything else. It
does the minimum a correct peer must (netstring framing, TCP_NODELAY, TCP_QUICKACK
re-armed before each read) so the difference to chargeway is chargeway's work.
usage: python -m bench.kamailio.noop_peer HOST:PORT
"""

from __future__ import annotations

import socket
import sys
import time

import orjson

from agents.kamailio.codec import EvapiCodec, Frame


def main(address: str) -> None:
    host, port = address.rsplit(":", 1)
    deadline = time.time() + 30
    while True:
        try:
            sock = socket.create_connection((host, int(port)))
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    codec = EvapiCodec()
    counts: dict[str, int] = {}
    print("noop peer connected", flush=True)
    while True:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        data = sock.recv(262144)
        if not data:
            break
        out = []
        for item in codec.feed(data):
            if not isinstance(item, Frame):
                continue
            msg = item.message
            name = msg.get("event", "")
            counts[name] = counts.get(name, 0) + 1
            if name == "CGR_AUTH_REQUEST":
                out.append(codec.encode({
                    "Event": msg.get("reply_route") or "CGR_AUTH_REPLY",
                    "TransactionIndex": msg.get("tr_index"), "TransactionLabel": msg.get("tr_label"),
                    "Attributes": "", "ResourceAllocation": "", "MaxUsage": -1, "Routes": "",
                    "Thresholds": "", "StatQueues": "", "Error": ""}))
        if out:
            sock.sendall(b"".join(out))
    print("COUNTS", orjson.dumps(counts).decode(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
