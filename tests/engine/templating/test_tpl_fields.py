"""Every field type, field options and path selectors, as an operator writes them."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from engine.templating import TemplateFieldError

T_START = datetime(2024, 1, 1, 10, 0, 0, tzinfo=timezone.utc)


async def test_variable_constant_and_yaml_types(fields):
    out = await fields("""
        - {tag: A, path: '*cgreq.Account', value: '~*req.User-Name'}
        - {tag: T, path: '*cgreq.ToR', type: '*constant', value: '*voice'}
        - {tag: N, path: '*cgreq.Number', type: '*constant', value: 2001}
        - {tag: S, path: '*cgreq.Literal', type: '*constant', value: '~not;a;ref'}
        - {tag: V, path: '*cgreq.Text', value: '2001'}
    """, {"User-Name": "1001"})
    assert out.request == {"Account": "1001", "ToR": "*voice", "Number": 2001,
                           "Literal": "~not;a;ref", "Text": "2001"}


async def test_concatenation_and_composed(fields):
    out = await fields("""
        - {tag: O, path: '*cgreq.OriginID', value: '~*req.Session-Id;-;~*req.CC-Request-Number'}
        - {tag: C1, path: '*cgreq.Extra', type: '*composed', value: 'a'}
        - {tag: C2, path: '*cgreq.Extra', type: '*composed', value: '~*req.Session-Id'}
        - {tag: P, path: '*cgreq.Dest', value: '~*req.To'}
        - {tag: P2, path: '*cgreq.Dest', type: '*prefix', value: '49'}
        - {tag: S2, path: '*cgreq.Dest', type: '*suffix', value: '#'}
    """, {"Session-Id": "s1", "CC-Request-Number": 3, "To": "301234"})
    assert out.request == {"OriginID": "s1-3", "Extra": "as1", "Dest": "49301234#"}


async def test_missing_reference_skips_field_unless_mandatory(fields):
    out = await fields("- {tag: A, path: '*cgreq.Account', value: '~*req.Nope;x'}", {})
    assert out.request == {}
    with pytest.raises(TemplateFieldError) as err:
        await fields("- {tag: OriginID, path: '*cgreq.OriginID', value: '~*req.Session-Id', "
                     "mandatory: true}", {"Other": 1})
    assert (err.value.processor_id, err.value.tag, err.value.path) == (
        "P", "OriginID", "*req.Session-Id")
    assert err.value.missing == ("Session-Id",)


async def test_mandatory_empty_and_unconvertible_values_raise(fields):
    with pytest.raises(TemplateFieldError) as err:
        await fields("- {tag: A, path: '*cgreq.Account', value: '~*req.U', mandatory: true}",
                     {"U": ""})
    assert err.value.reason == "missing"
    with pytest.raises(TemplateFieldError) as err:
        await fields("- {tag: U, path: '*cgreq.Usage', value: '~*req.U{*duration}', "
                     "mandatory: true}", {"U": "later"})
    assert err.value.reason.startswith("invalid")


async def test_group_appends_every_value(fields):
    out = await fields("""
        - {tag: G, path: '*cgreq.Avps', type: '*group', value: '~*req.Cisco-AVPair'}
    """, {"Cisco-AVPair": ["a=1", "b=2"]}, reply_fields="""
        - {tag: R, path: '*rep.Reply-Message', type: '*group', value: '~*req.Cisco-AVPair'}
        - {tag: R2, path: '*rep.Reply-Message', type: '*group', value: 'end'}
    """)
    assert out.request["Avps"] == ["a=1", "b=2"]
    assert [item.value for item in out.reply] == ["a=1", "b=2", "end"]


async def test_usage_difference_and_cc_usage(fields):
    out = await fields("""
        - {tag: U, path: '*cgreq.Usage', type: '*usage_difference',
           value: '~*req.End;~*req.Start'}
        - {tag: TU, path: '*cgreq.TotalUsage', type: '*cc_usage',
           value: '~*req.CC-Request-Number;~*req.Used-Service-Unit.CC-Time{*from_seconds};5m'}
        - {tag: FirstU, path: '*cgreq.First', type: '*cc_usage',
           value: '~*req.Zero;~*req.Used-Service-Unit.CC-Time{*from_seconds};5m'}
    """, {"End": "2024-01-01T10:01:30Z", "Start": T_START, "CC-Request-Number": 3, "Zero": 0,
          "Used-Service-Unit": {"CC-Time": 42}})
    assert out.request["Usage"] == 90_000_000_000
    # USU + interval x (CC-Request-Number - 1): 42s + 5m x 2
    assert out.request["TotalUsage"] == 642_000_000_000
    assert out.request["First"] == 42_000_000_000


async def test_arithmetic_types_are_exact(fields):
    out = await fields("""
        - {tag: S, path: '*cgreq.Sum', type: '*sum', value: '~*req.A;~*req.B;0.2'}
        - {tag: D, path: '*cgreq.Diff', type: '*difference', value: '~*req.A;~*req.B'}
        - {tag: M, path: '*cgreq.Mul', type: '*multiply', value: '~*req.A;3'}
        - {tag: V, path: '*cgreq.Div', type: '*divide', value: '~*req.A;4'}
        - {tag: DU, path: '*cgreq.Dur', type: '*sum', value: '1m;~*req.Dur'}
        - {tag: Z, path: '*cgreq.Zero', type: '*divide', value: '~*req.A;0'}
    """, {"A": "0.1", "B": 0.1, "Dur": "30s"})
    assert out.request["Sum"] == Decimal("0.4")
    assert out.request["Diff"] == 0
    assert out.request["Mul"] == Decimal("0.3")
    assert out.request["Div"] == Decimal("0.025")
    assert out.request["Dur"] == 90_000_000_000
    assert "Zero" not in out.request


async def test_time_types(fields):
    out = await fields("""
        - {tag: U, path: '*cgreq.Unix', type: '*unix_timestamp', value: '~*req.T'}
        - {tag: D, path: '*cgreq.Go', type: '*datetime', value: '~*req.T',
           layout: '2006-01-02 15:04:05', timezone: Europe/Berlin}
        - {tag: R, path: '*cgreq.RFC', type: '*datetime', value: '~*req.T'}
        - {tag: P, path: '*cgreq.Py', type: '*datetime', value: '~*req.Epoch', layout: '%d/%m/%Y'}
    """, {"T": "2024-07-01T10:00:00Z", "Epoch": 1704067200})
    assert out.request["Unix"] == 1719828000
    assert out.request["Go"] == "2024-07-01 12:00:00"
    assert out.request["RFC"] == "2024-07-01T10:00:00Z"
    assert out.request["Py"] == "01/01/2024"


async def test_filler_width_padding_strip(fields):
    out = await fields("""
        - {tag: F, path: '*cgreq.Filler', type: '*filler', width: 4}
        - {tag: Z, path: '*cgreq.Zero', value: '~*req.N', width: 6, padding: '*zeroleft'}
        - {tag: L, path: '*cgreq.Left', value: '~*req.S', width: 5, padding: '*left'}
        - {tag: R, path: '*cgreq.Right', value: '~*req.S', width: 5, padding: '*right'}
        - {tag: SL, path: '*cgreq.StripL', value: '~*req.Long', width: 3, strip: '*left'}
        - {tag: SR, path: '*cgreq.StripR', value: '~*req.Long', width: 3, strip: '*right'}
        - {tag: X, path: '*cgreq.TooLong', value: '~*req.Long', width: 3, strip: '*xright'}
    """, {"N": 42, "S": "ab", "Long": "abcdef"})
    assert out.request == {"Filler": "    ", "Zero": "000042", "Left": "   ab",
                           "Right": "ab   ", "StripL": "def", "StripR": "abc"}


async def test_remove_none_blocker_and_field_filters(fields):
    out = await fields("""
        - {tag: A, path: '*cgreq.A', value: 'x'}
        - {tag: Rm, path: '*cgreq.A', type: '*remove'}
        - {tag: N, path: '*cgreq.N', type: '*none'}
        - {tag: Skip, path: '*cgreq.B', value: 'no', filters: ['*string:~*req.K:2']}
        - {tag: Stop, path: '*cgreq.B', value: 'yes', filters: ['*string:~*req.K:1'], blocker: true}
        - {tag: After, path: '*cgreq.C', value: 'never'}
    """, {"K": 1})
    assert out.request == {"B": "yes"}


async def test_skipped_blocker_does_not_block(fields):
    out = await fields("", {"Error": ""}, reply_fields="""
        - {tag: E, path: '*rep.Result-Code', value: 5030, type: '*constant',
           filters: ['*notempty:~*cgrep.Error'], blocker: true}
        - {tag: OK, path: '*rep.Result-Code', value: 2001, type: '*constant'}
    """, flags="[*dryrun]")
    assert out.reply_tree == [("Result-Code", 2001)]


async def test_targets_opts_tmp_vars_and_reading_back(fields):
    out = await fields("""
        - {tag: T, path: '*tmp.Usage', value: '~*req.U{*from_seconds}'}
        - {tag: U, path: '*cgreq.Usage', value: '~*tmp.Usage'}
        - {tag: O, path: '*opts.*sessionsDebitInterval', type: '*constant', value: 0}
        - {tag: V, path: '*vars.Seen', value: 'yes'}
        - {tag: W, path: '*cgreq.FromVar', value: '~*vars.Seen;/;~*vars.RemoteHost'}
        - {tag: N, path: '*cgreq.Extra.Nested', value: '~*cgreq.Usage'}
    """, {"U": 5}, {"RemoteHost": "h1"})
    assert out.request == {"Usage": 5_000_000_000, "FromVar": "yes/h1",
                           "Extra": {"Nested": 5_000_000_000}}
    assert out.opts == {"*sessionsDebitInterval": 0}
    assert out.tmp == {"Usage": 5_000_000_000}


SUBS = {"Subscription-Id": [
    {"Subscription-Id-Type": 1, "Subscription-Id-Data": "262011234567890"},
    {"Subscription-Id-Type": 0, "Subscription-Id-Data": "491701234"},
], "Multiple-Services-Credit-Control": [
    {"Rating-Group": 10, "Used-Service-Unit": {"CC-Total-Octets": 100}},
    {"Rating-Group": 20, "Used-Service-Unit": {"CC-Total-Octets": 200}},
]}


async def test_selectors_index_and_filter(fields):
    out = await fields("""
        - {tag: A, path: '*cgreq.Account',
           value: '~*req.Subscription-Id[~Subscription-Id-Type(0)].Subscription-Id-Data'}
        - {tag: B, path: '*cgreq.CgratesForm',
           value: '~*req.Subscription-Id.Subscription-Id-Data[~Subscription-Id-Type(1)]'}
        - {tag: C, path: '*cgreq.Second', value: '~*req.Multiple-Services-Credit-Control[1].Rating-Group'}
        - {tag: D, path: '*cgreq.Leaf', value: '~*req.Subscription-Id.Subscription-Id-Data[1]'}
        - {tag: E, path: '*cgreq.Last', value: '~*req.Multiple-Services-Credit-Control[-1].Used-Service-Unit.CC-Total-Octets'}
        - {tag: F, path: '*cgreq.Either', value: '~*req.Subscription-Id[~Subscription-Id-Type(2;0)].Subscription-Id-Data'}
        - {tag: G, path: '*cgreq.None', value: '~*req.Subscription-Id[~Subscription-Id-Type(7)].Subscription-Id-Data'}
        - {tag: H, path: '*cgreq.OutOfRange', value: '~*req.Multiple-Services-Credit-Control[5].Rating-Group'}
        - {tag: I, path: '*cgreq.RG', value: '~*req.Multiple-Services-Credit-Control[~Rating-Group(20)].Used-Service-Unit.CC-Total-Octets'}
    """, SUBS)
    assert out.request == {"Account": "491701234", "CgratesForm": "262011234567890",
                           "Second": 20, "Leaf": "491701234", "Last": 200, "Either": "491701234",
                           "RG": 200}


async def test_reply_new_branch_builds_two_mscc(fields):
    out = await fields("", SUBS, reply_fields="""
        - {tag: RG1, path: '*rep.Multiple-Services-Credit-Control.Rating-Group',
           value: '~*req.Multiple-Services-Credit-Control[0].Rating-Group'}
        - {tag: G1, path: '*rep.Multiple-Services-Credit-Control.Granted-Service-Unit.CC-Total-Octets',
           type: '*constant', value: 1000}
        - {tag: RG2, path: '*rep.Multiple-Services-Credit-Control.Rating-Group', new_branch: true,
           value: '~*req.Multiple-Services-Credit-Control[1].Rating-Group'}
        - {tag: G2, path: '*rep.Multiple-Services-Credit-Control.Granted-Service-Unit.CC-Total-Octets',
           type: '*constant', value: 2000}
        - {tag: Back, path: '*rep.Echo', value: '~*rep.Multiple-Services-Credit-Control.Rating-Group[1]'}
    """)
    mscc = "Multiple-Services-Credit-Control"
    assert out.reply_tree == [
        (mscc, [("Rating-Group", 10), ("Granted-Service-Unit", [("CC-Total-Octets", 1000)])]),
        (mscc, [("Rating-Group", 20), ("Granted-Service-Unit", [("CC-Total-Octets", 2000)])]),
        ("Echo", 20),
    ]


async def test_named_template_inlined_and_rendered(tpl):
    template = tpl("""
        templates:
          dm:
            - {tag: U, path: '*rep.User-Name', value: '~*cgreq.Account', mandatory: true}
            - {tag: S, path: '*rep.Acct-Session-Id', value: '~*cgreq.OriginID'}
            - {tag: R, path: '*rep.Reply-Message', value: '~*vars.Reason'}
        processors:
          - id: P
            reply_fields:
              - {type: '*template', value: dm}
    """)
    rep = template.render("dm", cgreq={"Account": "1001", "OriginID": "abc"},
                          vars={"Reason": "INSUFFICIENT_CREDIT"})
    assert rep.tree() == [("User-Name", "1001"), ("Acct-Session-Id", "abc"),
                          ("Reply-Message", "INSUFFICIENT_CREDIT")]
    assert [f.tag for f in template.processors[0].reply_fields] == ["U", "S", "R"]
    with pytest.raises(TemplateFieldError):
        template.render("dm", cgreq={})


async def test_paths_through_repeated_groups_take_the_first_value_found(fields):
    message = {"A": [{"X": 1}, {"B": {"C": 2}}, {"B": {"C": 3}}], "L": [[{"Z": 9}]],
               "S": "scalar", "E": []}
    out = await fields("""
        - {tag: C, path: '*cgreq.C', value: '~*req.A.B.C'}
        - {tag: M, path: '*cgreq.M', value: '~*req.A.B.C', mandatory: true}
        - {tag: X, path: '*cgreq.X', value: '~*req.A.X'}
        - {tag: Z, path: '*cgreq.Z', value: '~*req.L.Z'}
        - {tag: N, path: '*cgreq.N', value: '~*req.S.Deeper'}
        - {tag: E, path: '*cgreq.E', value: '~*req.E'}
        - {tag: All, path: '*cgreq.All', type: '*group', value: '~*req.A.B.C'}
    """, message)
    assert out.request == {"C": 2, "M": 2, "X": 1, "Z": 9, "All": [2, 3]}


async def test_blocker_after_converted_optional_field(fields):
    out = await fields("""
        - {tag: U, path: '*cgreq.Usage', value: '~*req.U{*from_seconds}', blocker: true}
        - {tag: Never, path: '*cgreq.Never', value: 'x'}
    """, {"U": 3})
    assert out.request == {"Usage": 3_000_000_000}
    out = await fields("""
        - {tag: U, path: '*cgreq.Usage', value: '~*req.U{*from_seconds}', blocker: true}
        - {tag: Next, path: '*cgreq.Next', value: 'x'}
    """, {"U": "bad"})
    assert out.request == {"Next": "x"}


async def test_escaped_semicolon_and_converted_constants(fields):
    out = await fields(r"""
        - {tag: S, path: '*cgreq.Text', value: 'a\;b'}
        - {tag: D, path: '*cgreq.Seconds', value: '5m{*duration_seconds}'}
        - {tag: J, path: '*cgreq.Joined', value: '~*req.A;\;;~*req.B'}
    """, {"A": "x", "B": "y"})
    assert out.request == {"Text": "a;b", "Seconds": 300, "Joined": "x;y"}


async def test_processor_timezone_reads_naive_times(tpl):
    from engine.templating import DictView, TemplateRunner
    template = tpl("""
        processors:
          - id: P
            timezone: Europe/Berlin
            request_fields:
              - {tag: U, path: '*cgreq.Unix', type: '*unix_timestamp', value: '~*req.T'}
              - {tag: D, path: '*cgreq.Usage', type: '*usage_difference', value: '~*req.T2;~*req.T'}
    """)
    out = await TemplateRunner(template, None).run(
        DictView({"T": "2024-01-01 00:00:00", "T2": "2024-01-01T00:00:30+01:00"}), {})
    assert out.request == {"Unix": 1704063600, "Usage": 30_000_000_000}
