"""Every converter, through a real template value (what an operator writes)."""

from decimal import Decimal

import pytest

from engine.templating import TemplateError


@pytest.mark.parametrize(("value", "message", "expected"), [
    ("~*req.U{*duration}", {"U": "1m30s"}, 90_000_000_000),
    ("~*req.U{*duration_nanoseconds}", {"U": "2s"}, 2_000_000_000),
    ("~*req.U{*duration_seconds}", {"U": 30_000_000_000}, 30),
    ("~*req.U{*duration_seconds}", {"U": "1.5s"}, Decimal("1.5")),
    ("~*req.U{*duration_seconds&*round:0}", {"U": "1.5s"}, 2),
    ("~*req.U{*duration_seconds&*round:0:*down}", {"U": "1.9s"}, 1),
    ("~*req.U{*duration_seconds&*round:0:*up}", {"U": "1.1s"}, 2),
    ("~*req.U{*duration_minutes}", {"U": "90s"}, Decimal("1.5")),
    ("~*req.U{*from_seconds}", {"U": 30}, 30_000_000_000),
    ("~*req.U{*from_seconds}", {"U": "0.5"}, 500_000_000),
    ("~*req.U{*from_milliseconds}", {"U": 1500}, 1_500_000_000),
    ("~*req.U{*from_microseconds}", {"U": 7}, 7_000),
    ("~*req.C{*round:2}", {"C": "0.125"}, Decimal("0.13")),
    ("~*req.C{*multiply:60}", {"C": "0.5"}, 30),
    ("~*req.C{*divide:4}", {"C": 10}, Decimal("2.5")),
    ("~*req.G{*gigawords}", {"G": 2}, 8_589_934_592),
    ("~*req.F{*sipuri_user}", {"F": '"Al" <sip:1001@example.org:5060;tag=x>'}, "1001"),
    ("~*req.F{*sipuri_host}", {"F": "sip:1001@example.org:5060;transport=udp"}, "example.org"),
    ("~*req.F{*len}", {"F": "abcd"}, 4),
    ("~*req.N{*string}", {"N": 5}, "5"),
    ("~*req.N{*int}", {"N": "42"}, 42),
    ("~*req.N{*decimal}", {"N": "0.1"}, Decimal("0.1")),
    ("~*req.T{*unixtime}", {"T": "2024-01-01T00:00:10Z"}, 1704067210),
    ("~*req.A{*ip2hex}", {"A": "10.0.0.1"}, "0x0a000001"),
    ("~*req.S{*strip:*left:2}", {"S": "0049123"}, "49123"),
    ("~*req.S{*strip:*right:+}", {"S": "123++"}, "123"),
    ("~*req.S{*json}", {"S": {"a": 1}}, '{"a":1}'),
    ("~*req.B", {"B": b"bytes"}, b"bytes"),
    ("~*req.B{*string}", {"B": b"caf\xc3\xa9"}, "café"),
    ("~*req.ULI{*3gpp_uli}", {"ULI": bytes.fromhex("8262f2100001" + "62f210" + "00000102")},
     "TAI:26201-1 ECGI:26201-258"),
])
async def test_converter(fields, value, message, expected):
    out = await fields(f"- {{tag: X, path: '*cgreq.X', value: '{value}'}}", message)
    assert out.request["X"] == expected
    assert type(out.request["X"]) is type(expected)


async def test_regexp_rules_with_go_replacement_and_chaining(fields):
    out = await fields("""
        - {tag: U, path: '*cgreq.Usage', value: '~*req.CC-Time:s/^(\\d+)$/${1}s/{*duration}'}
        - {tag: D, path: '*cgreq.Destination', value: '~*req.To:s/^\\+//:s/^0049/49/'}
        - {tag: P, path: '*cgreq.Plain', value: '~*req.To:s/^(.)(.*)$/$2/'}
    """, {"CC-Time": 30, "To": "+0049301234"})
    assert out.request["Usage"] == 30_000_000_000
    assert out.request["Destination"] == "49301234"
    assert out.request["Plain"] == "0049301234"


async def test_unconvertible_optional_field_is_skipped_not_fatal(fields):
    out = await fields("- {tag: U, path: '*cgreq.Usage', value: '~*req.U{*duration}'}",
                       {"U": "soon"})
    assert "Usage" not in out.request


@pytest.mark.parametrize("value", ["~*req.U{*nope}", "~*req.U{*round:x}", "~*req.U{*divide:0}",
                                   "~*req.U{*round}", "~*req.U:s/(/x/", "~*req.U{*len:3}"])
def test_bad_converter_is_a_load_error(tpl, value):
    with pytest.raises(TemplateError) as err:
        tpl(f"""
            processors:
              - id: P
                request_fields:
                  - tag: X
                    path: '*cgreq.X'
                    value: '{value}'
        """)
    assert err.value.line == 7
    assert "field 'X'" in err.value.reason
