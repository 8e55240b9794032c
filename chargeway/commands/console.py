"""``chargeway console``: cgr-console's command words over the JSON-RPC API.

    chargeway console cost Subject=1001 Destination=1002 AnswerTime="*now" Usage=2m
    chargeway console balance_add Account=1001 BalanceType="*monetary" Value=10 Balance.ID=main
    chargeway console session_authorize_event Account=1001 Destination=1002 Usage=3h
    chargeway console SessionSv1.AuthorizeEvent '{"GetMaxUsage":true,"Event":{"Account":"1001"}}'

``Key=Value`` arguments follow cgr-console (lists and objects as JSON,
``Key='"text"'`` forces a string) with two conveniences: ``A.B=x`` builds
nested objects, and the session commands put event fields given at the top
level into ``Event``. Replies are pretty-printed with durations human-readable
(``"2m0s"``) as cgr-console does; ``--raw`` keeps nanoseconds.
"""

from __future__ import annotations

import socket
import sys
import uuid
from typing import Any

import click
import orjson

from agents.jsonrpc.codec import JsonStreamDecoder, classify, encode_request, Response
from engine.units import format_duration

# command word -> (method, fixed arguments)
COMMANDS: dict[str, tuple[str, dict[str, Any]]] = {
    "cost": ("APIerSv1.GetCost", {}),
    "accounts": ("APIerSv2.GetAccounts", {}),
    "account": ("APIerSv2.GetAccount", {}),
    "account_set": ("APIerSv2.SetAccount", {}),
    "account_remove": ("APIerSv1.RemoveAccount", {}),
    "balance_add": ("APIerSv1.AddBalance", {}),
    "balance_set": ("APIerSv1.SetBalance", {}),
    "balance_debit": ("APIerSv1.DebitBalance", {}),
    "cdrs": ("CDRsV1.GetCDRs", {}),
    "cdrs_count": ("CDRsV1.GetCDRsCount", {}),
    "load_tp_from_folder": ("APIerSv1.LoadTariffPlanFromFolder", {}),
    "status": ("CoreSv1.Status", {}),
    "session_authorize_event": ("SessionSv1.AuthorizeEvent", {"GetMaxUsage": True}),
    "session_initiate": ("SessionSv1.InitiateSession", {"InitSession": True}),
    "session_update": ("SessionSv1.UpdateSession", {"UpdateSession": True}),
    "session_terminate": ("SessionSv1.TerminateSession", {"TerminateSession": True}),
    "session_process_cdr": ("SessionSv1.ProcessCDR", {}),
    "session_process_message": ("SessionSv1.ProcessMessage", {"Debit": True}),
    "session_force_disconnect": ("SessionSv1.ForceDisconnect", {}),
    "active_sessions": ("SessionSv1.GetActiveSessions", {}),
    "active_sessions_count": ("SessionSv1.GetActiveSessionsCount", {}),
}
# Session commands take a CGREvent: these keys stay at the top, everything else goes into Event.
_CGREVENT_KEYS = frozenset({"Tenant", "ID", "Time", "Event", "APIOpts", "GetMaxUsage", "GetAttributes",
                            "InitSession", "UpdateSession", "TerminateSession", "Debit", "ForceDuration",
                            "AttributeIDs", "Flags", "Limit", "Filters"})
_EVENT_COMMANDS = frozenset({"session_authorize_event", "session_initiate", "session_update",
                             "session_terminate", "session_process_cdr", "session_process_message"})

PING_SERVICES = {
    "apiers": "APIerSv1", "apierv1": "APIerSv1", "apierv2": "APIerSv2", "sessions": "SessionSv1",
    "sessionsv1": "SessionSv1", "cdrs": "CDRsV1", "cdrsv1": "CDRsV1", "cores": "CoreSv1",
    "core": "CoreSv1", "coresv1": "CoreSv1",
}

# Keys whose integer values are Go time.Duration (ns) in CGRateS replies.
DURATION_KEYS = frozenset({"Usage", "MaxUsage", "TotalUsage", "LastUsed", "DebitInterval", "DurationIndex",
                           "RateIncrement", "RateUnit", "GroupIntervalStart", "ExtraDuration", "LastUsage",
                           "NextAutoDebit", "MinSleep"})


class ConsoleError(click.ClickException):
    exit_code = 1


def parse_value(raw: str) -> Any:
    """cgr-console value rules, forgiving: JSON where it parses, else the text itself.

    Bare digits stay strings only where CGRateS expects strings would be
    ambiguous, so numbers are kept numeric; quote them (``'"1001"'``) to force text.
    """
    text = raw.strip()
    if text[:1] in ('"', "[", "{") or text in ("true", "false", "null"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return raw
    return raw


# Keys that are numbers in CGRateS argument structs (everything else stays text).
NUMERIC_KEYS = frozenset({"Value", "Limit", "Offset", "Weight", "MinCost", "MaxCost", "BalanceWeight"})


def parse_args(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConsoleError(f"argument {pair!r} is not Key=Value")
        value = parse_value(raw)
        leaf = key.rsplit(".", 1)[-1]
        if isinstance(value, str) and leaf in NUMERIC_KEYS:
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        target = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = target.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConsoleError(f"argument {pair!r}: {part} is not an object")
            target = node
        target[parts[-1]] = value
    return out


def build_request(words: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """Command words -> (method, argument object)."""
    if not words:
        raise ConsoleError("give a command (e.g. status, cost, accounts) or Service.Method '{json}'")
    command, rest = words[0], words[1:]
    if "." in command:
        if len(rest) == 1 and rest[0].lstrip()[:1] in ("{", "["):
            try:
                param = orjson.loads(rest[0])
            except orjson.JSONDecodeError as exc:
                raise ConsoleError(f"invalid JSON argument: {exc}") from None
            if isinstance(param, list) and len(param) == 1:
                param = param[0]
            return command, param
        return command, parse_args(rest)
    if command == "ping":
        if not rest:
            raise ConsoleError(f"ping needs a subsystem: {', '.join(sorted(PING_SERVICES))}")
        service = PING_SERVICES.get(rest[0].lower(), rest[0])
        return f"{service}.Ping", {}
    if command not in COMMANDS:
        raise ConsoleError(f"unknown command {command!r}; known: ping, {', '.join(sorted(COMMANDS))}")
    method, fixed = COMMANDS[command]
    args = dict(fixed)
    given = parse_args(rest)
    if command in _EVENT_COMMANDS:
        event = dict(given.pop("Event", {}) or {})
        for key in list(given):
            if key not in _CGREVENT_KEYS:
                event[key] = given.pop(key)
        args.update(given)
        args["Event"] = event
        args.setdefault("ID", uuid.uuid4().hex[:12])
    else:
        args.update(given)
    return method, args


def humanize(value: Any, key: str = "") -> Any:
    """Durations (ns ints under duration keys) as Go strings, recursively."""
    if isinstance(value, dict):
        return {k: humanize(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [humanize(v, key) for v in value]
    if key in DURATION_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return format_duration(value)
    return value


def call(server: str, method: str, param: Any, *, token: str | None, timeout: float) -> Any:
    """One blocking request/response over TCP; returns result or raises ConsoleError."""
    host, _, port = server.rpartition(":")
    try:
        sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
    except (OSError, ValueError) as exc:
        raise ConsoleError(f"cannot connect to {server}: {exc}") from None
    decoder = JsonStreamDecoder(256 * 1024 * 1024)
    with sock:
        if token:
            _exchange(sock, decoder, "CoreSv1.Auth", {"Token": token}, 1)
        return _exchange(sock, decoder, method, param, 2)


def _exchange(sock: socket.socket, decoder: JsonStreamDecoder, method: str, param: Any, id_: int) -> Any:
    sock.sendall(encode_request(method, param, id_))
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise ConsoleError(f"no answer to {method} within the timeout") from None
        if not data:
            raise ConsoleError("connection closed by the server")
        for value in decoder.feed(data):
            msg = classify(value)
            if isinstance(msg, Response) and msg.id in (id_, None):
                if msg.error:
                    raise ConsoleError(msg.error)
                return msg.result


@click.command("console")
@click.option("--server", default="127.0.0.1:2012", show_default=True, help="JSON-RPC TCP address.")
@click.option("--token", default=None, envvar="CHARGEWAY_API_TOKEN", help="API token, if configured.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the answer.")
@click.option("--raw", is_flag=True, help="Print durations as nanoseconds (the raw RPC reply).")
@click.option("--show-request", is_flag=True, help="Print the request sent, then the reply.")
@click.argument("words", nargs=-1)
def console_command(server: str, token: str | None, timeout: float, raw: bool, show_request: bool,
                    words: tuple[str, ...]) -> None:
    """Call the API with cgr-console command words (cost, accounts, balance_add, cdrs, ...)
    or Service.Method '{json}', and pretty-print the reply."""
    method, param = build_request(words)
    if show_request:
        click.echo(orjson.dumps({"method": method, "params": [param]}, option=orjson.OPT_INDENT_2).decode(),
                   err=True)
    result = call(server, method, param, token=token, timeout=timeout)
    shown = result if raw else humanize(result)
    if isinstance(shown, str):
        click.echo(shown)
    else:
        click.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
    sys.stdout.flush()
