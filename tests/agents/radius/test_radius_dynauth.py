"""Disconnect-Request and CoA-Request reach a NAS listener, with retries and NAK handling."""

from __future__ import annotations

import pytest

from agents.radius import codec
from agents.radius.clients import ClientTable
from agents.radius.dictionary import RadiusDictionary
from agents.radius.dynauth import DynAuthClient, DynAuthError
from agents.radius.link import RadiusLink
from agents.radius.view import RadiusMessageView
from tests.agents.radius.nas_listener import TestNas

SECRET = b"nas-secret"


@pytest.fixture(scope="module")
def dictionary():
    return RadiusDictionary.load()


async def make_link(dictionary, nas_port: int, attempts: int = 3, timeout: float = 0.1):
    clients = ClientTable.from_config([{"network": "127.0.0.0/8", "secret": SECRET.decode(), "da_port": nas_port}])
    dynauth = DynAuthClient(attempts=attempts, timeout=timeout)
    await dynauth.start("127.0.0.1")
    return RadiusLink(dynauth, clients, dictionary), dynauth


EVENT = {"OriginID": "call-77", "OriginHost": "127.0.0.1", "Account": "1001", "RadiusNASAddress": "127.0.0.1"}


async def test_disconnect_request_acknowledged(dictionary):
    nas = TestNas(SECRET)
    port = await nas.start()
    link, dynauth = await make_link(dictionary, port)
    try:
        await link.disconnect_session(EVENT, "INSUFFICIENT_CREDIT")
        assert len(nas.received) == 1
        pkt = nas.received[0]
        assert pkt.code == codec.DISCONNECT_REQUEST
        view = RadiusMessageView(pkt, dictionary)
        assert view.first("Acct-Session-Id") == "call-77"
        assert view.first("User-Name") == "1001"
        assert view.first("NAS-IP-Address") == "127.0.0.1"
        assert view.first("Reply-Message") == "INSUFFICIENT_CREDIT"
    finally:
        nas.stop()
        await dynauth.stop()


async def test_disconnect_retried_until_answered(dictionary):
    nas = TestNas(SECRET, ignore_first=2)
    port = await nas.start()
    link, dynauth = await make_link(dictionary, port, attempts=3, timeout=0.05)
    try:
        await link.disconnect_session(EVENT, "FORCED_DISCONNECT")
        assert nas.seen == 3 and len(nas.received) == 1
    finally:
        nas.stop()
        await dynauth.stop()


async def test_disconnect_nak_raises_with_error_cause(dictionary):
    nas = TestNas(SECRET, nak_cause=503)
    port = await nas.start()
    link, dynauth = await make_link(dictionary, port)
    try:
        with pytest.raises(DynAuthError, match="Disconnect-NAK.*503 Session-Context-Not-Found") as info:
            await link.disconnect_session(EVENT, "FORCED_DISCONNECT")
        assert info.value.nak and info.value.error_cause == 503
    finally:
        nas.stop()
        await dynauth.stop()


async def test_silent_nas_gives_up_after_attempts(dictionary):
    nas = TestNas(SECRET, ignore_first=99)
    port = await nas.start()
    link, dynauth = await make_link(dictionary, port, attempts=3, timeout=0.03)
    try:
        with pytest.raises(DynAuthError, match="no answer after 3 attempts"):
            await link.disconnect_session(EVENT, "FORCED_DISCONNECT")
        assert nas.seen == 3
    finally:
        nas.stop()
        await dynauth.stop()


async def test_coa_changes_session_timeout(dictionary):
    nas = TestNas(SECRET)
    port = await nas.start()
    link, dynauth = await make_link(dictionary, port)
    try:
        result = await link.alter_session(EVENT, 600)
        assert result.code == codec.COA_ACK
        pkt = nas.received[0]
        assert pkt.code == codec.COA_REQUEST
        assert RadiusMessageView(pkt, dictionary).first("Session-Timeout") == 600
    finally:
        nas.stop()
        await dynauth.stop()


async def test_unknown_nas_address_is_an_error(dictionary):
    link, dynauth = await make_link(dictionary, 3799)
    try:
        with pytest.raises(DynAuthError, match="no known NAS address"):
            await link.disconnect_session({"OriginID": "x", "OriginHost": "bras-7"}, "FORCED_DISCONNECT")
    finally:
        await dynauth.stop()
