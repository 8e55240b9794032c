"""DictView: how JSON-like messages are read by templates (agents rely on it)."""

from engine.templating import DictView


MSG = {
    "Session-Id": "s1",
    "Multiple-Services-Credit-Control": [
        {"Rating-Group": 1, "Used-Service-Unit": {"CC-Time": 10}},
        {"Rating-Group": 2, "Used-Service-Unit": [{"CC-Time": 20}, {"CC-Time": 30}]},
    ],
    "Cisco-AVPair": ["a=1", "b=2"],
    "Empty": [],
}


def test_plain_and_nested_values():
    view = DictView(MSG)
    assert view.values(("Session-Id",)) == ["s1"]
    assert view.values(("Multiple-Services-Credit-Control", "Rating-Group")) == [1, 2]
    assert view.values(("Multiple-Services-Credit-Control", "Used-Service-Unit", "CC-Time")) == [
        10, 20, 30]


def test_repeated_leaf_and_absent_paths():
    view = DictView(MSG)
    assert view.values(("Cisco-AVPair",)) == ["a=1", "b=2"]
    assert view.values(("Nope",)) == []
    assert view.values(("Session-Id", "Deeper")) == []
    assert view.values(("Empty",)) == []


def test_children_are_one_view_per_group_instance():
    kids = DictView(MSG).children(("Multiple-Services-Credit-Control",))
    assert [k.values(("Rating-Group",)) for k in kids] == [[1], [2]]
