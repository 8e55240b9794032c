"""Cheaper construction for the frozen slotted dataclasses built on every charged request.

A ``@dataclass(frozen=True, slots=True)`` ``__init__`` sets each field through
``object.__setattr__`` (a global lookup, an attribute lookup and a generic call per
field): about 0.2 µs a field, 4 µs for an 18-field ``CostResult``. ``fast_init``
regenerates ``__init__`` with the same signature, defaults and ``__post_init__``
call, but sets fields through the slot descriptors' own ``__set__``, bound once.
Instances stay frozen (assignment still raises ``FrozenInstanceError``), equal,
hashable, picklable and ``dataclasses.replace``-able exactly as before.

Apply it outside ``@dataclass`` (``slots=True`` builds a new class)::

    @fast_init
    @dataclass(frozen=True, slots=True)
    class Charge: ...
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Replace the dataclass ``__init__`` of ``cls`` by a descriptor-setting one (same behaviour)."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    if "__slots__" not in cls.__dict__:
        raise TypeError(f"fast_init needs a slots dataclass, {cls.__name__} has none")
    if any(f._field_type is dataclasses._FIELD_INITVAR  # type: ignore[attr-defined]
           for f in cls.__dataclass_fields__.values()):  # type: ignore[attr-defined]
        raise TypeError(f"fast_init does not handle InitVar fields ({cls.__name__})")
    env: dict[str, Any] = {"__new_object": object.__new__, "__missing": dataclasses.MISSING}
    args: list[str] = []
    kwonly: list[str] = []
    body: list[str] = []
    for index, f in enumerate(params):
        setter = f"__set{index}"
        env[setter] = cls.__dict__[f.name].__set__
        if not f.init:
            if f.default is not dataclasses.MISSING:
                env[f"__default{index}"] = f.default
                body.append(f"    {setter}(self, __default{index})")
            elif f.default_factory is not dataclasses.MISSING:
                env[f"__factory{index}"] = f.default_factory
                body.append(f"    {setter}(self, __factory{index}())")
            continue
        target = kwonly if f.kw_only else args
        if f.default is not dataclasses.MISSING:
            env[f"__default{index}"] = f.default
            target.append(f"{f.name}=__default{index}")
            body.append(f"    {setter}(self, {f.name})")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"__factory{index}"] = f.default_factory
            target.append(f"{f.name}=__missing")
            body.append(f"    {setter}(self, __factory{index}() if {f.name} is __missing else {f.name})")
        else:
            target.append(f.name)
            body.append(f"    {setter}(self, {f.name})")
    signature = ", ".join(["self", *args, *(["*", *kwonly] if kwonly else [])])
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__({signature}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, env)  # noqa: S102 - generated from the class's own field names, as dataclasses does
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[misc]
    return cls
