"""What a spec may not be, checked before and while it is read: more values than MAX_NODES
after alias expansion (a YAML bomb is tiny on disk and enormous in memory), collections nested
deeper than MAX_DEPTH (block or flow, aliases counted where they are used). Each is an SC103
diagnostic at the place it happens, never a parser's recursion error."""

from __future__ import annotations

import re

from .diagnostics import Diagnostic, Span
from .located import SourceError, mark_span, point

MAX_NODES = 200_000  # values after alias expansion; the largest real spec has a few thousand
MAX_DEPTH = 100  # collections inside one another; a real spec nests fewer than 10


def too_many(span: Span) -> Diagnostic:
    return Diagnostic.error(
        "SC103",
        f"the document expands to more than {MAX_NODES:,} values",
        span,
        label="aliases here multiply the document",
        help="a stack spec needs no deeply nested aliases; write the values out or use `defaults:`",
    )


def check_expansion(file: str, root) -> None:
    """Count the values the document expands to and how deep it nests, each node once however
    many aliases use it, and refuse a YAML bomb or an alias chain before building it: at the
    innermost collection that by itself expands or nests past the limit."""
    sizes: dict[int, tuple[int, int]] = {}  # id -> (values, levels), each capped just past its limit

    def children(node) -> list:
        if node.id == "sequence":
            return node.value
        if node.id == "mapping":
            return [v for _, v in node.value]
        return []

    def measure(node) -> tuple[int, int]:
        known = sizes.get(id(node))
        if known is None:
            sizes[id(node)] = (1, 1)  # a node inside itself (never from the composer) counts once
            inner = [measure(c) for c in children(node)]
            known = sizes[id(node)] = (min(1 + sum(n for n, _ in inner), MAX_NODES + 1),
                                       min(1 + max((d for _, d in inner), default=0), MAX_DEPTH + 2))
        return known

    values, levels = measure(root)
    for limit, index, problem in ((MAX_NODES, 0, too_many), (MAX_DEPTH + 1, 1, None)):
        if (values, levels)[index] <= limit:
            continue
        node = root
        while True:
            big = next((c for c in children(node) if measure(c)[index] > limit), None)
            if big is None:
                span = mark_span(file, node.start_mark, node.end_mark)
                raise SourceError(problem(span) if problem else too_deep(file, span))
            node = big


def too_deep(file: str, span: Span) -> Diagnostic:
    return Diagnostic.error(
        "SC103", f"the document nests more than {MAX_DEPTH} levels deep", span,
        label="this value is too deep inside the others",
        help="a stack spec is a few levels deep; flatten the structure (and check that no alias holds itself)",
    )


_FLOW = re.compile(r"[\[\]{}\"'#\n\\]")


def check_flow_depth(path: str, text: str) -> None:
    """Refuse flow collections nested deeper than MAX_DEPTH before the parser reads them: its
    scanner takes time in the square of the depth (seconds at a thousand), for no real spec.

    A rough scan (quotes, comments, brackets) is enough: a plain scalar with a bracket in it
    at worst counts one level too many, and a spec 100 levels deep is not a real one."""
    depth, quote, comment, skip = 0, "", False, -1
    for m in _FLOW.finditer(text):
        c, i = m[0], m.start()
        if comment:
            comment = c != "\n"
        elif quote == '"':
            if c == "\\" and i != skip:
                skip = i + 1
            elif c == '"' and i != skip:
                quote = ""
        elif quote:
            quote = "" if c == "'" else quote
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            comment = True
        elif c in "\"'":
            j = i - 1
            while j >= 0 and text[j] in " \t":
                j -= 1
            if j < 0 or text[j] in ":-?,[{\n" or depth:
                quote = c
        elif c in "[{" and (depth or i == 0 or text[i - 1] in " \t\n:-?,"):
            depth += 1
            if depth > MAX_DEPTH:
                raise SourceError(too_deep(path, point(path, text, i)))
        elif c in "]}" and depth:
            depth -= 1


def span_of(file: str, text: str, start: int, end: int) -> Span:
    first = point(file, text, start)
    return Span(file, first.line, first.col, first.line, first.col + max(1, end - start))
