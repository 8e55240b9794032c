"""Random messages never crash the evaluator: only TemplateFieldError for mandatory fields."""

from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.templating import DictView, TemplateFieldError, TemplateRunner, parse_template
from engine.templating.converters import KNOWN as CONVERTERS

KEYS = ["A", "B", "C", "Session-Id", "CC-Request-Number"]
CONVERTER_ARGS = {"*round": "*round:2", "*multiply": "*multiply:3", "*divide": "*divide:7",
                  "*strip": "*strip:*left:1"}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.binary(max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(timezone.utc)),
    st.sampled_from(["1m30s", "0", "-5", "2024-01-01T00:00:00Z", "sip:1@h", "10.0.0.1", "NaN",
                     "1e999", "", "0x80", "99999999999999999999"]),
)
messages = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(KEYS), children, max_size=5)),
    max_leaves=25,
)


def _fields() -> str:
    lines = []
    for i, conv in enumerate(CONVERTERS):
        spec = CONVERTER_ARGS.get(conv, conv)
        lines.append(f"      - {{tag: C{i}, path: '*cgreq.C{i}', value: '~*req.A{{{spec}}}'}}")
    kinds = [
        ("*variable", "~*req.A.B;-;~*req.C"),
        ("*composed", "~*req.A[~B(1)].C"),
        ("*group", "~*req.A.B[0]"),
        ("*usage_difference", "~*req.A;~*req.B"),
        ("*cc_usage", "~*req.CC-Request-Number;~*req.A;~*req.B"),
        ("*sum", "~*req.A;~*req.B"),
        ("*difference", "~*req.A;1"),
        ("*multiply", "~*req.A;~*req.C"),
        ("*divide", "~*req.A;~*req.B"),
        ("*unix_timestamp", "~*req.A"),
        ("*datetime", "~*req.B"),
        ("*prefix", "~*req.C"),
        ("*suffix", "~*req.A:s/(.*)/${1}x/"),
    ]
    for i, (kind, value) in enumerate(kinds):
        lines.append(f"      - {{tag: K{i}, path: '*cgreq.K{i}', type: '{kind}', value: '{value}'}}")
    lines.append("      - {tag: W, path: '*cgreq.W', value: '~*req.A', width: 3, padding: '*zeroleft',"
                 " strip: '*right'}")
    lines.append("      - {tag: M, path: '*cgreq.OriginID', value: '~*req.Session-Id', mandatory: true}")
    return "\n".join(lines)


TEMPLATE = parse_template(f"""
processors:
  - id: Filtered
    filters: ['*gt:~*req.A:5', '*regex:~*req.B:^x', '*ipnet:~*req.C:10.0.0.0/8']
    flags: [*authorize]
  - id: Any
    filters: ['*notempty:~*req.A', '*noteq:~*req.B:~*req.C', '*notexists:~*req.Z']
    flags: [*initiate, *continue]
    request_fields:
{_fields()}
    reply_fields:
      - {{tag: R, path: '*rep.X.Y', value: '~*cgrep.MaxUsage{{*duration_seconds}}', new_branch: true}}
      - {{tag: G, path: '*rep.L', type: '*group', value: '~*req.B'}}
  - id: Fallback
    flags: [*message]
    request_fields:
      - {{tag: F, path: '*cgreq.F', value: '~*req.A.A.A;~*req.B[1].C', width: 4, padding: '*left'}}
""", file="property.yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=messages)
async def test_random_messages_never_crash(message):
    runner = TemplateRunner(TEMPLATE, None)
    try:
        outcome = await runner.run(DictView(message), {"RemoteHost": message})
    except TemplateFieldError as err:
        assert err.tag == "M" and err.missing == ("Session-Id",)
        return
    assert outcome.processor_id in ("Any", "Fallback", "Filtered")
    outcome.reply_tree  # noqa: B018 - building the reply must not fail either
    assert isinstance(outcome.request, dict)


@settings(max_examples=100, deadline=None)
@given(message=st.dictionaries(st.sampled_from(KEYS), messages, max_size=5))
async def test_session_id_present_always_completes(message):
    message = {**message, "Session-Id": "s-1"}
    outcome = await TemplateRunner(TEMPLATE, None).run(DictView(message), {})
    assert outcome.request.get("OriginID") == "s-1" or outcome.processor_id == "Fallback" \
        or outcome.processor_id == "Filtered"


def test_values_of_known_types_survive_text_conversion():
    from engine.templating.coerce import text
    for value in (b"\xff\xfe", Decimal("1E+3"), datetime(2024, 1, 1, tzinfo=timezone.utc), None,
                  True, 1.5, [1], {"a": 1}):
        assert isinstance(text(value), str)


PATHS = [("A",), ("A", "B"), ("A", "B", "C"), ("B", "A"), ("C", "C", "C")]
FAST = parse_template("processors:\n  - id: P\n    request_fields:\n" + "".join(
    f"      - {{tag: F{i}, path: '*cgreq.F{i}', value: '~*req.{'.'.join(p)}'}}\n"
    for i, p in enumerate(PATHS)), file="fast.yaml")


@settings(max_examples=300, deadline=None)
@given(message=messages)
async def test_compiled_reads_agree_with_the_view(message):
    """The generated dict readers return what ``MessageView.values(path)[0]`` returns."""
    outcome = await TemplateRunner(FAST, None).run(DictView(message), {})
    for i, path in enumerate(PATHS):
        expected = DictView(message).values(path)
        if expected:
            assert outcome.request[f"F{i}"] == expected[0] or (
                expected[0] != expected[0])  # NaN is never equal to itself
        else:
            assert f"F{i}" not in outcome.request


SELECTOR_VALUES = ["~*req.A[~B(1)].C", "~*req.A.C[~B(1;x)]", "~*req.A[0].B", "~*req.A[-1].B.C",
                   "~*req.A.B[1]", "~*req.B[~A(None)].A", "~*req.A[1]"]


@settings(max_examples=300, deadline=None)
@given(message=messages)
def test_first_value_fast_paths_agree_with_all_values(message):
    """Every optimised first-value reader returns the first of the general list reader."""
    from engine.templating.context import MISSING, Ctx
    from engine.templating.rsr import compile_value

    ctx = Ctx(DictView(message), {})
    for text in SELECTOR_VALUES + [f"~*req.{'.'.join(p)}" for p in PATHS]:
        value = compile_value(text)
        first, every = value.first(ctx), value.all(ctx)
        if every:
            assert first is every[0] or first == every[0] or every[0] != every[0], text
        else:
            assert first is MISSING, text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=st.dictionaries(st.sampled_from(KEYS), messages, max_size=5))
async def test_explain_path_gives_the_same_outcome_as_the_compiled_path(message):
    """``template explain`` runs the field closures; agents run the generated code."""
    from engine.templating.explain import ExplainTrace

    results = []
    for trace in (None, ExplainTrace()):
        try:
            out = await TemplateRunner(TEMPLATE, None).run(DictView(message), {}, trace=trace)
            results.append((out.processors, out.request, out.opts, out.reply_tree))
        except TemplateFieldError as err:
            results.append((err.processor_id, err.tag))
    assert results[0] == results[1]


FIELD_FILTERS = parse_template("""
processors:
  - id: P
    filters: ['*notstring:~*req.Session-Id:never', '*notgt:~*req.CC-Request-Number:99']
    request_fields:
      - {tag: S, path: '*cgreq.S', type: '*constant', value: s, filters: ['*string:~*req.A:1;true']}
      - {tag: P, path: '*cgreq.P', type: '*constant', value: p, filters: ['*notprefix:~*req.B:x']}
      - {tag: E, path: '*cgreq.E', type: '*constant', value: e, filters: ['*empty:~*req.C:']}
      - {tag: X, path: '*cgreq.X', type: '*constant', value: x, filters: ['*notexists:~*req.A:']}
      - {tag: G, path: '*cgreq.G', type: '*constant', value: g, filters: ['*gt:~*req.A:5', '*lte:~*req.B:2;-7']}
      - {tag: V, path: '*cgreq.V', value: '~*req.B', filters: ['*suffix:~*req.C:0', '*noteq:~*req.A:0']}
      - {tag: K, path: '*cgreq.K', type: '*constant', value: k, filters: ['*exists:~*req.B:'], blocker: true}
      - {tag: L, path: '*cgreq.L', type: '*constant', value: l}
""", file="field_filters.yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=st.dictionaries(st.sampled_from(KEYS), messages, max_size=5))
@example(message={"A": True, "B": False, "C": ""})
@example(message={"A": 7, "B": 2, "C": "10"})
@example(message={"A": 6, "B": Decimal("-7"), "C": None})
@example(message={"A": "1", "B": "xy", "C": ["a"]})
@example(message={"A": 0, "B": [1, 2], "C": b""})
@example(message={"Session-Id": "s", "CC-Request-Number": 100})
async def test_inlined_field_filters_agree_with_the_filter_closures(message):
    """Field and processor filters are generated inline; ``explain`` runs their closures."""
    from engine.templating.explain import ExplainTrace

    results = []
    for trace in (None, ExplainTrace()):
        out = await TemplateRunner(FIELD_FILTERS, None).run(DictView(message), {}, trace=trace)
        results.append((out.processors, out.request))
    assert results[0] == results[1]


PATH_FILTERS = parse_template("""
processors:
  - id: P
    request_fields:
      - {tag: N, path: '*cgreq.N', type: '*constant', value: n, filters: ['*exists:~*req.A.B:']}
      - {tag: NN, path: '*cgreq.NN', type: '*constant', value: nn, filters: ['*notexists:~*req.A.B.C:']}
      - {tag: S, path: '*cgreq.S', type: '*sum', value: '~*req.B;~*req.C', filters: ['*exists:~*req.A.C:']}
      - {tag: SB, path: '*cgreq.SB', type: '*sum', value: '~*req.A;1', filters: ['*notexists:~*req.B.A:'],
         blocker: true}
      - {tag: Z, path: '*cgreq.Z', type: '*constant', value: z}
    reply_fields:
      - {tag: R, path: '*rep.G.R', value: '~*req.A'}
      - {tag: R2, path: '*rep.G.R', value: '~*req.B', new_branch: true}
      - {tag: Q, path: '*rep.Q', type: '*constant', value: q, filters: ['*string:~*rep.G.R:1;true']}
      - {tag: QN, path: '*rep.QN', type: '*constant', value: qn, filters: ['*notprefix:~*rep.G.R:x']}
      - {tag: QG, path: '*rep.QG', type: '*constant', value: qg, filters: ['*suffix:~*rep.G:0']}
""", file="path_filters.yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=st.dictionaries(st.sampled_from(KEYS), messages, max_size=5))
@example(message={"A": {"B": [], "C": 1}, "B": 2, "C": "3"})
@example(message={"A": [{"B": {"C": None}}, {"C": 0}], "B": "x1", "C": 1})
@example(message={"A": True, "B": 1})
@example(message={"A": "xa", "B": {"A": 1}})
async def test_inlined_path_filters_agree_with_the_filter_closures(message):
    """``*exists`` on a deeper ``*req`` path, value tests on ``*rep`` paths, and the filters
    of a field that is not itself inlined are generated inline; ``explain`` runs closures."""
    from engine.templating.explain import ExplainTrace

    results = []
    for trace in (None, ExplainTrace()):
        out = await TemplateRunner(PATH_FILTERS, None).run(DictView(message), {}, trace=trace)
        results.append((out.processors, out.request, out.reply_tree))
    assert results[0] == results[1]
