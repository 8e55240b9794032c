"""Bad templates stop start-up with file, line and reason."""

import pytest

from engine.templating import TemplateError, load_template


def error_of(tpl, text: str, agent=None) -> TemplateError:
    with pytest.raises(TemplateError) as err:
        tpl(text, agent)
    return err.value


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("processors:\n  - id: P\n    flags: [*initiate, *initiat]\n", 3, "unknown flag '*initiat'"),
    ("processors:\n  - id: P\n    flags:\n      - *initiate\n      - *update\n", 3,
     "one request type only"),
    ("processors:\n  - id: P\n    request_fields:\n      - tag: A\n        path: '*cgreq.A'\n"
     "        type: '*varible'\n        value: x\n", 6, "unknown field type '*varible'"),
    ("processors:\n  - id: P\n    request_fields:\n      - tag: A\n        path: '*cgreq.A'\n"
     "        value: '~*rq.A'\n", 6, "unknown path root '*rq'"),
    ("processors:\n  - id: P\n    request_fields:\n      - tag: A\n        path: '*rep.A'\n"
     "        value: x\n", 5, "cannot write to *rep here"),
    ("processors:\n  - id: P\n    reply_fields:\n      - tag: A\n        path: '*cgreq.A'\n"
     "        value: x\n", 5, "cannot write to *cgreq here"),
    ("processors:\n  - id: P\n    request_fields:\n      - tag: A\n        path: '~*cgreq.A'\n"
     "        value: x\n", 5, "has no '~'"),
    ("processors:\n  - id: P\n    request_fields:\n      - tag: A\n        path: '*cgreq.A'\n"
     "        value: '~*req.A[x]'\n", 6, "bad selector"),
    ("processors:\n  - id: P\n    request_fields:\n      - {tag: A, path: '*cgreq.A', "
     "type: '*usage_difference', value: '~*req.A'}\n", 4, "needs 2 ';'-separated parts"),
    ("processors:\n  - id: P\n    request_fields:\n      - {tag: A, path: '*cgreq.A', "
     "value: x, mandatory: yes please}\n", 4, "mandatory must be true or false"),
    ("processors:\n  - id: P\n    request_fields:\n      - {tag: A, path: '*cgreq.A', "
     "value: x, colour: red}\n", 4, "unknown field key 'colour'"),
    ("processors:\n  - id: P\n  - id: P\n", 3, "duplicate processor id 'P'"),
    ("processors:\n  - id: P\n    timezone: Mars/Olympus\n", 3, "unknown timezone"),
    ("procesors:\n  - id: P\n", 1, "unknown key 'procesors'"),
    ("agent: radius\nprocessors:\n  - id: P\n", 1, "template is for agent 'radius'"),
    ("processors:\n  - id: P\n    reply_fields:\n      - {type: '*template', value: nope}\n", 4,
     "*template 'nope' is not defined"),
    ("processors:\n  - id: P\n    flags: [*initiate\n", 4, "YAML syntax"),
    ("processors:\n  - id: P\n    id: Q\n", 3, "duplicate key 'id'"),
    ("processors: []\n", 1, "non-empty list"),
])
def test_error_has_line_and_reason(tpl, text, line, reason):
    err = error_of(tpl, text, "diameter")
    assert err.file == "t.yaml"
    assert err.line == line, str(err)
    assert reason in err.reason, str(err)
    assert str(err).startswith(f"t.yaml:{line}: ")


def test_load_template_reports_the_real_file(tmp_path):
    path = tmp_path / "diameter.yaml"
    path.write_text("agent: diameter\nprocessors:\n  - id: A\n    filters: ['*strng:~*req.X:1']\n")
    with pytest.raises(TemplateError) as err:
        load_template(path, agent="diameter")
    assert str(err.value).startswith(f"{path}:4: processor A: unknown filter type '*strng'")
    with pytest.raises(TemplateError) as err:
        load_template(tmp_path / "absent.yaml")
    assert "cannot read" in str(err.value)
