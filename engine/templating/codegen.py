"""Field lists compiled to one Python function each, so a message costs no per-field calls.

The common field shapes (a constant, or one reference with optional converters copied
into a flat target) become straight-line code reading the ``DictView``'s dicts; any
other field calls its own ``apply`` closure. Generated source only ever embeds
identifiers and ``repr()`` of names; values travel through the function's namespace.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, Callable

from engine.templating.coerce import is_empty, number, text
from engine.templating.context import MISSING, Ctx
from engine.templating.errors import ConversionError
from engine.templating.fields import _CONVERSION_ERRORS, SKIPPED, Field, build_apply, log
from engine.templating.filters import Filter, single_name
from engine.templating.readers import data_reader, first_at
from engine.templating.view import DictView

FieldRunner = Callable[[Ctx], None]


def _inline_read(lines: list[str], names: tuple[str, ...], var: str, names_var: str,
                 indent: str) -> None:
    """``var = first value at names`` in nested dicts; a list on the way continues with
    ``first_at`` from that point (same result as ``DictView.values(names)[0]``)."""
    lines.append(f"{indent}{var} = data.get({names[0]!r}, M)")
    _inline_level(lines, names, 1, var, names_var, indent)


def _inline_level(lines: list[str], names: tuple[str, ...], k: int, var: str, names_var: str,
                  indent: str) -> None:
    if k == len(names):
        lines.append(f"{indent}if type({var}) is list:")
        lines.append(f"{indent}    {var} = FA({var}, {names_var}, {k}, M)")
        return
    lines.append(f"{indent}if type({var}) is dict:")
    lines.append(f"{indent}    {var} = {var}.get({names[k]!r}, M)")
    _inline_level(lines, names, k + 1, var, names_var, indent + "    ")
    lines.append(f"{indent}elif type({var}) is list:")
    lines.append(f"{indent}    {var} = FA({var}, {names_var}, {k}, M)")
    lines.append(f"{indent}elif {var} is not M:")
    lines.append(f"{indent}    {var} = M")


_READS = "__reads__"     # ns key of the read plan (``_Reads``) while code is generated


class _Reads:
    """One read per value: a one-name read of a context dict (``~*cgrep.Error``,
    ``~*vars.ValidityTime``) that the generated function makes more than once is made once,
    at its start, into a local. Only for roots no field of the function writes (the value
    cannot change during the call). Generation runs twice: the first run counts the reads
    (``count``), the second uses the locals (``local``)."""

    __slots__ = ("count", "local")

    def __init__(self) -> None:
        self.count: dict[tuple[str, str], int] = {}
        self.local: dict[tuple[str, str], str] | None = None

    def expr(self, root: str, key: str) -> str:
        """The expression reading ``key`` of context dict ``root``."""
        if self.local is None:
            self.count[(root, key)] = self.count.get((root, key), 0) + 1
        elif (root, key) in self.local:
            return self.local[(root, key)]
        return f"ctx.{root[1:]}.get({key!r}, M)"

    def plan(self, written: set[str]) -> list[str]:
        """Switch to using locals; returns the lines reading them."""
        self.local = {}
        lines = []
        for (root, key), n in self.count.items():
            if n > 1 and root not in written:
                name = self.local[(root, key)] = f"r{len(self.local)}"
                lines.append(f"    {name} = ctx.{root[1:]}.get({key!r}, M)")
        return lines


def _read_expr(ns: dict[str, Any], root: str, key: str) -> str:
    reads = ns.get(_READS)
    return reads.expr(root, key) if reads is not None else f"ctx.{root[1:]}.get({key!r}, M)"


def compile_fields(fields: list[Field], processor_id: str | None) -> FieldRunner:
    """One function running ``fields`` in order (blockers honoured)."""
    reads = _Reads()
    _field_lines(fields, processor_id, reads)          # counts the reads
    pre = reads.plan({fld.target.root for fld in fields})
    lines, ns = _field_lines(fields, processor_id, reads)
    lines[1:1] = pre
    del ns[_READS]
    return _define(lines, ns, "run", f"<template fields {processor_id}>")


def _field_lines(fields: list[Field], processor_id: str | None,
                 reads: _Reads) -> tuple[list[str], dict[str, Any]]:
    ns: dict[str, Any] = {"M": MISSING, "S": SKIPPED, "DictView": DictView, "is_empty": is_empty,
                          "CE": _CONVERSION_ERRORS, "log": log, "PID": processor_id, "FA": first_at,
                          "EMPTYABLE": (str, bytes, bytearray, list, dict, tuple), "U": _UNKNOWN,
                          _READS: reads}
    lines = ["def run(ctx):",
             "    req = ctx.req",
             "    data = req.data if type(req) is DictView else None",
             "    if type(data) is not dict:",
             "        data = None"]
    roots_used: set[str] = set()
    for i, fld in enumerate(fields):
        body = _field_code(fld, i, ns, roots_used, processor_id)
        if body is not None and fld.filters:
            # Field filters inline, each guarding the next and then the field's code.
            guarded: list[str] = []
            indent = ""
            for j, flt in enumerate(fld.filters):
                guarded.extend(indent + line for line in _filter_code(flt, f"{i}_{j}", ns))
                guarded.append(f"{indent}    if ok:")
                indent += "    "
            body = guarded + [indent + line for line in body]
        if body is None and fld.filters:
            # Not inlined, but its filters are: then the field's closure without them.
            ns[f"A{i}"] = build_apply(replace(fld, filters=[]), processor_id)
            call = [f"if A{i}(ctx) is not S:", "    return"] if fld.blocker else [f"A{i}(ctx)"]
            indent = "    "
            for j, flt in enumerate(fld.filters):
                lines.extend(indent[4:] + line for line in _filter_code(flt, f"{i}_{j}", ns))
                lines.append(f"{indent}if ok:")
                indent += "    "
            lines.extend(indent + line for line in call)
            continue
        if body is None:
            ns[f"A{i}"] = fld.apply
            if fld.blocker:
                lines.append(f"    if A{i}(ctx) is not S:")
                lines.append("        return")
            else:
                lines.append(f"    A{i}(ctx)")
            continue
        lines.extend(body)
    for root in roots_used:
        lines.insert(1, f"    t_{root} = ctx.{root}")
    lines.append("    return")
    return lines, ns


_CONCAT_KINDS = ("*composed", "*prefix", "*suffix")


def _field_code(fld: Field, i: int, ns: dict[str, Any], roots_used: set[str],
                processor_id: str | None) -> list[str] | None:
    if fld.width:
        return None
    items = fld.value.items
    if fld.kind in _CONCAT_KINDS or (fld.kind in ("*variable", "*constant") and len(items) != 1):
        return _joined_field_code(fld, i, ns, roots_used, processor_id)
    if fld.kind not in ("*variable", "*constant") or len(items) != 1:
        return None
    target = fld.target
    flat = target.root != "*rep" and len(target.names) == 1
    if target.root != "*rep" and not flat:
        return None
    if flat:
        root = target.root[1:]
        roots_used.add(root)
        write = f"t_{root}[{target.names[0]!r}] = v"
    else:
        ns[f"W{i}"] = target.names
        write = (f"ctx.rep.set(W{i}, v, new_branch=True)" if fld.new_branch
                 else f"ctx.rep.set(W{i}, v)")
    part = items[0]
    out: list[str] = []
    if not part.is_ref:
        if fld.mandatory and is_empty(part.constant):
            return None
        ns[f"K{i}"] = part.constant
        out.append(f"    v = K{i}")
        out.append(f"    {write}")
        if fld.blocker:
            out.append("    return")
        return out
    path = part.path
    assert path is not None and part.first is not None
    ns[f"F{i}"] = part.first
    reader = data_reader(path) if path.root in ("*req", "*oreq") else None
    if reader is not None and not path.has_selectors:
        ns[f"N{i}"] = path.names
        out.append("    if data is not None:")
        _inline_read(out, path.names, "v", f"N{i}", "        ")
        out.append("    else:")
        out.append(f"        v = F{i}(ctx)")
    elif reader is not None:
        ns[f"R{i}"] = reader
        out.append(f"    v = R{i}(data) if data is not None else F{i}(ctx)")
    elif path.root != "*req" and path.root != "*oreq" and len(path.names) == 1 and \
            not path.has_selectors and path.root != "*rep":
        out.append(f"    v = {_read_expr(ns, path.root, path.names[0])}")
        out.append("    if type(v) is list:")
        out.append(f"        v = F{i}(ctx)")
    else:
        out.append(f"    v = F{i}(ctx)")
    ns[f"FAIL{i}"] = _failer(fld, processor_id)
    out.append("    if v is M:")
    if fld.mandatory:
        out.append(f"        raise FAIL{i}('missing')")
    else:
        out.append("        pass")
    out.append("    else:")
    body: list[str] = []
    if part.transforms:
        for k, conv in enumerate(part.transforms):
            ns[f"C{i}_{k}"] = conv
        body.append("try:")
        for k in range(len(part.transforms)):
            body.append(f"    v = C{i}_{k}(v)")
        body.append("except CE as err:")
        if fld.mandatory:
            body.append(f"    raise FAIL{i}(f'invalid ({{err}})') from None")
        else:
            body.append(f"    log.warning('template processor %s field %s: skipped, %s', PID, "
                        f"{fld.tag!r}, err)")
            body.append("    v = M")
    if fld.mandatory:
        body.append("if v is None or v == '' or (type(v) in EMPTYABLE and not v):")
        body.append(f"    raise FAIL{i}('missing')")
    if part.transforms and not fld.mandatory:
        body.append("if v is not M:")
        body.append(f"    {write}")
        if fld.blocker:
            body.append("    return")
    else:
        body.append(write)
        if fld.blocker:
            body.append("return")
    out.extend("        " + line for line in body)
    return out


def _joined_field_code(fld: Field, i: int, ns: dict[str, Any], roots_used: set[str],
                       processor_id: str | None) -> list[str] | None:
    """A value of several parts (``_;~*vars.RatingGroup``) and/or one joined to what the
    flat target already holds (``*composed``, ``*prefix``, ``*suffix``): the value's own
    ``first`` computes it, the rest is inline (what ``build_apply`` does, step for step)."""
    target = fld.target
    if target.root == "*rep" or len(target.names) != 1:
        return None
    root = target.root[1:]
    roots_used.add(root)
    key = repr(target.names[0])
    ns[f"F{i}"] = fld.value.first
    ns[f"FAIL{i}"] = _failer(fld, processor_id)
    ns.setdefault("text", text)
    out = ["    try:",
           f"        v = F{i}(ctx)",
           "    except CE as err:"]
    if fld.mandatory:
        out.append(f"        raise FAIL{i}(f'invalid ({{err}})') from None")
    else:
        out.append(f"        log.warning('template processor %s field %s: skipped, %s', PID, {fld.tag!r}, err)")
        out.append("        v = M")
    if fld.mandatory:
        out.append("    if v is M or is_empty(v):")
        out.append(f"        raise FAIL{i}('missing')")
    else:
        out.append("    if v is not M:")
    body: list[str] = []
    if fld.kind == "*composed":
        body += [f"cur = t_{root}.get({key})", "if cur is not None:", "    v = text(cur) + text(v)"]
    elif fld.kind == "*prefix":
        body += [f"cur = t_{root}.get({key})", "v = text(v) + ('' if cur is None else text(cur))"]
    elif fld.kind == "*suffix":
        body += [f"cur = t_{root}.get({key})", "v = ('' if cur is None else text(cur)) + text(v)"]
    body.append(f"t_{root}[{key}] = v")
    if fld.blocker:
        body.append("return")
    indent = "    " if fld.mandatory else "        "
    out.extend(indent + line for line in body)
    return out


def _failer(fld: Field, processor_id: str | None) -> Callable[[str], Exception]:
    from engine.templating.errors import TemplateFieldError

    def fail(reason: str) -> Exception:
        log.warning("template processor %s field %s (line %d): %s value at %s",
                    processor_id, fld.tag, fld.line, reason, fld.source_text() or "(constant)")
        return TemplateFieldError(processor_id, fld.tag, fld.source_text(), fld.missing_path(),
                                  reason)
    return fail


Matcher = Callable[[Ctx], bool]
_UNKNOWN = object()   # the message is not a DictView: the filter's closure decides
_INLINE_KINDS = {"*string": "v in X{i}", "*prefix": "v.startswith(X{i})", "*suffix": "v.endswith(X{i})"}


def compile_filters(filters: list[Filter], processor_id: str | None) -> Matcher:
    """One function: True when every filter passes (simple filters inlined)."""
    ns: dict[str, Any] = {"M": MISSING, "DictView": DictView, "U": _UNKNOWN}
    lines = ["def match(ctx):",
             "    req = ctx.req",
             "    data = req.data if type(req) is DictView else None",
             "    if type(data) is not dict:",
             "        data = None"]
    for i, flt in enumerate(filters):
        lines.extend(_filter_code(flt, str(i), ns))
        lines.append("    if not ok:")
        lines.append("        return False")
    lines.append("    return True")
    return _define(lines, ns, "match", f"<template filters {processor_id}>")


def _define(lines: list[str], ns: dict[str, Any], name: str, filename: str) -> Any:
    """Compile the generated function ``name`` from ``lines`` in ``ns``; it keeps its source
    (``template explain`` shows it, and tracebacks name ``filename``)."""
    source = "\n".join(lines) + "\n"
    exec(compile(source, filename, "exec"), ns)  # noqa: S102 - generated from the compiled template
    fn = ns[name]
    fn.source = source
    return fn


def _inlinable(flt: Filter) -> bool:
    """A filter on one plain name (``single_name``) outside the reply."""
    plain = single_name(flt.element)
    return plain is not None and plain[0] != "*rep"


def _filter_code(flt: Filter, key: str, ns: dict[str, Any]) -> list[str]:
    """Lines (function-body indentation) setting ``ok`` to the filter's verdict, negation
    included. Common shapes are tested inline on the raw value; any value they do not
    cover goes to the filter's own closure ``T<key>``, so the verdict is always the
    closure's. Needs ``ctx`` and ``data`` (the DictView's dict or None) in scope."""
    ns[f"T{key}"] = flt.check
    negate = flt.negate
    closure = f"T{key}(ctx)"
    if not _inlinable(flt):
        return _path_filter_code(flt, key, ns) or [f"    ok = {closure}"]
    assert flt.element is not None and flt.element.path is not None
    path = flt.element.path
    lines: list[str] = []
    compare = _numeric_constants(flt) if flt.kind in _COMPARE_OPS else None
    if compare is not None:
        # An int read (Diameter Unsigned32, a vars number) against numeric constants
        # compares exactly as the closure's Decimal order keys do.
        for k, constant in enumerate(compare):
            ns[f"X{key}_{k}"] = constant
        test = " or ".join(f"v {_COMPARE_OPS[flt.kind]} X{key}_{k}" for k in range(len(compare)))
        _read_single(lines, path.root, path.names[0], ns)
        lines.append("    if type(v) is int:")
        lines.append(f"        ok = not ({test})" if negate else f"        ok = {test}")
        _missing_else_closure(lines, negate, closure)
        return lines
    if flt.kind in ("*empty", "*exists"):
        _read_single(lines, path.root, path.names[0], ns)
        # Empty for *empty: missing or ""; *exists: present. Other shapes: the closure.
        if flt.kind == "*empty":
            lines.append("    if v is M or v == '':")
            lines.append(f"        ok = {not negate!r}")
            lines.append("    elif type(v) is str or type(v) is int or type(v) is bool:")   # never empty
            lines.append(f"        ok = {negate!r}")
        else:
            lines.append("    if v is M:")
            lines.append(f"        ok = {negate!r}")
            lines.append("    elif v is not U and type(v) is not list:")
            lines.append(f"        ok = {not negate!r}")
        lines.append("    else:")
        lines.append(f"        ok = {closure}")
        return lines
    if flt.kind not in _INLINE_KINDS or flt.constants is None:
        return [f"    ok = {closure}"]
    ns[f"X{key}"] = frozenset(flt.constants) if flt.kind == "*string" else flt.constants
    _read_single(lines, path.root, path.names[0], ns)
    test = _INLINE_KINDS[flt.kind].format(i=key)
    lines.append("    if type(v) is int:")
    lines.append("        v = str(v)")
    lines.append("    elif type(v) is bool:")
    lines.append("        v = 'true' if v else 'false'")
    lines.append("    if type(v) is str:")
    lines.append(f"        ok = not {test}" if negate else f"        ok = {test}")
    _missing_else_closure(lines, negate, closure)
    return lines


def _path_filter_code(flt: Filter, key: str, ns: dict[str, Any]) -> list[str] | None:
    """Inline code for two shapes ``single_name`` leaves out: ``*exists`` on a deeper
    ``*req`` path (``~*req.MSCC.Used-Service-Unit.CC-Input-Octets``), and a value test on
    a ``*rep`` path (``*string:~*rep.MSCC.Result-Code:2001``: every value found there).
    None for any other filter (its closure decides)."""
    element = flt.element
    if element is None or element.transforms or element.path is None or element.path.has_selectors:
        return None
    path = element.path
    negate = flt.negate
    closure = f"T{key}(ctx)"
    if flt.kind == "*exists" and path.root in ("*req", "*oreq"):
        # The first value at the path is missing exactly when there is none.
        ns[f"P{key}"] = path.names
        lines = ["    if data is not None:"]
        _inline_read(lines, path.names, "v", f"P{key}", "        ")
        lines.append("        ok = v is M" if negate else "        ok = v is not M")
        lines.append("    else:")
        lines.append(f"        ok = {closure}")
        return lines
    if path.root == "*rep" and flt.kind in _INLINE_KINDS and flt.constants is not None:
        # Any value at the path passing the test passes the filter; a value of a shape the
        # test does not cover (a group) hands the whole verdict to the closure.
        ns[f"P{key}"] = path.names
        ns[f"X{key}"] = frozenset(flt.constants) if flt.kind == "*string" else flt.constants
        test = _INLINE_KINDS[flt.kind].format(i=key)
        lines = ["    ok = False",
                f"    for v in ctx.rep.values(P{key}):",
                "        if type(v) is int:",
                "            v = str(v)",
                "        elif type(v) is bool:",
                "            v = 'true' if v else 'false'",
                "        if type(v) is not str:",
                "            ok = U",
                "            break",
                f"        if {test}:",
                "            ok = True",
                "            break",
                "    if ok is U:",
                f"        ok = {closure}"]
        if negate:
            lines += ["    else:", "        ok = not ok"]
        return lines
    return None


def _missing_else_closure(lines: list[str], negate: bool, closure: str) -> None:
    """The end of an inline value test: a missing value fails the filter (passes a negated
    one); any shape the inline test did not cover gets the filter's own closure."""
    lines.append("    elif v is M:")
    lines.append(f"        ok = {negate!r}")
    lines.append("    else:")
    lines.append(f"        ok = {closure}")


_COMPARE_OPS = {"*gt": ">", "*gte": ">=", "*lt": "<", "*lte": "<=", "*eq": "=="}


def _numeric_constants(flt: Filter) -> list[Decimal] | None:
    """The filter's constants as Decimals when every one is a plain number (the closure
    then compares numbers with numbers), else None."""
    if not flt.constants:
        return None
    out = []
    for constant in flt.constants:
        try:
            out.append(number(constant))
        except ConversionError:
            return None
    return out


def _read_single(lines: list[str], root: str, key: str, ns: dict[str, Any]) -> None:
    """``v`` = the raw value of a one-name path (``U`` when the message is not a dict
    view: no inline test accepts it, so the filter's own closure decides)."""
    if root in ("*req", "*oreq"):
        lines.append(f"    v = data.get({key!r}, M) if data is not None else U")
    else:
        lines.append(f"    v = {_read_expr(ns, root, key)}")
