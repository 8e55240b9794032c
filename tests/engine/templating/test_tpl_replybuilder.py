"""The reply tree: grouped AVPs, repeated items, new branches, flat order."""

from engine.templating import ReplyBuilder, ReplyItem

MSCC = "Multiple-Services-Credit-Control"


def test_set_groups_into_the_current_instance_and_replaces():
    rep = ReplyBuilder()
    rep.set(("Result-Code",), 5030)
    rep.set((MSCC, "Granted-Service-Unit", "CC-Time"), 30)
    rep.set((MSCC, "Result-Code"), 2001)
    rep.set(("Result-Code",), 2001)
    assert rep.tree() == [("Result-Code", 2001),
                          (MSCC, [("Granted-Service-Unit", [("CC-Time", 30)]), ("Result-Code", 2001)])]
    assert rep.items() == [ReplyItem(("Result-Code",), 2001),
                           ReplyItem((MSCC, "Granted-Service-Unit", "CC-Time"), 30),
                           ReplyItem((MSCC, "Result-Code"), 2001)]


def test_new_branch_opens_a_second_group_instance():
    rep = ReplyBuilder()
    rep.set((MSCC, "Rating-Group"), 1)
    rep.set((MSCC, "Granted-Service-Unit", "CC-Total-Octets"), 1000)
    rep.set((MSCC, "Rating-Group"), 2, new_branch=True)
    rep.set((MSCC, "Granted-Service-Unit", "CC-Total-Octets"), 2000)
    assert rep.tree() == [
        (MSCC, [("Rating-Group", 1), ("Granted-Service-Unit", [("CC-Total-Octets", 1000)])]),
        (MSCC, [("Rating-Group", 2), ("Granted-Service-Unit", [("CC-Total-Octets", 2000)])]),
    ]
    assert rep.values((MSCC, "Rating-Group")) == [1, 2]
    assert rep.get((MSCC, "Rating-Group")) == 2


def test_append_repeats_and_remove_deletes():
    rep = ReplyBuilder()
    rep.append(("Reply-Message",), "a")
    rep.append(("Reply-Message",), "b")
    rep.set(("Session-Timeout",), 60)
    assert rep.values(("Reply-Message",)) == ["a", "b"]
    rep.remove(("Reply-Message",))
    assert rep.items() == [ReplyItem(("Session-Timeout",), 60)]
    assert rep.get(("Reply-Message",)) is None
