"""CloudWatch Logs JSON filter patterns (``{ ($.errorCode = "AccessDenied*") || ... }``): enough of
the syntax to decide whether one pattern matches at least every event another one matches, over a
set of probe events.

Understood: comparisons of a ``$.`` path with ``=`` or ``!=`` to a quoted or bare value (``*`` a
wildcard anywhere in it), ``$.path NOT EXISTS``, ``&&``, ``||`` and parentheses. CloudWatch does not
document how ``a || b && c`` groups, so a pattern mixing the two without parentheses must cover the
probes read both ways (``&&`` first, and left to right). A pattern using anything else (numbers,
``IS NULL``, text patterns) is not understood and covers nothing: the policy reports it rather
than guess."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Event = Mapping[str, Any]
Matcher = Callable[[Event], bool]

TOKEN = re.compile(r'\s*(\|\||&&|\(|\)|!=|=|"(?:[^"\\]|\\.)*"|[^\s()=!&|"]+)')


class NotUnderstood(ValueError):
    """A pattern outside the syntax this module reads."""


def tokens(pattern: str) -> list[str]:
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise NotUnderstood("not a JSON filter pattern")
    body, found, at = text[1:-1].strip(), [], 0
    while at < len(body):
        match = TOKEN.match(body, at)
        if match is None:
            raise NotUnderstood(f"unexpected {body[at:]!r}")
        found.append(match.group(1))
        at = match.end()
    return found


def field(event: Event, path: str) -> Any:
    value: Any = event
    for name in path[2:].split("."):
        if not isinstance(value, Mapping) or name not in value:
            return None
        value = value[name]
    return value


def compare(path: str, op: str, raw: str) -> Matcher:
    text = raw[1:-1] if raw.startswith('"') else raw
    wanted = re.compile(".*".join(re.escape(part) for part in text.split("*")), re.DOTALL)

    def matches(event: Event) -> bool:
        value = field(event, path)
        if not isinstance(value, str):  # a comparison needs the field, as a string
            return False
        return bool(wanted.fullmatch(value)) == (op == "=")

    return matches


class Reader:
    """One reading of a token list: with ``and_first``, ``&&`` binds tighter than ``||``;
    without it, operators apply left to right."""

    def __init__(self, words: list[str], and_first: bool) -> None:
        self.words, self.at, self.and_first = words, 0, and_first

    def read(self) -> Matcher:
        matcher = self.expression()
        if self.at != len(self.words):
            raise NotUnderstood(f"unexpected {self.words[self.at]!r}")
        return matcher

    def peek(self) -> str | None:
        return self.words[self.at] if self.at < len(self.words) else None

    def take(self) -> str:
        word = self.peek()
        if word is None:
            raise NotUnderstood("the pattern ends early")
        self.at += 1
        return word

    def expression(self) -> Matcher:
        if not self.and_first:
            return self.chain(("&&", "||"), self.atom)
        return self.chain(("||",), lambda: self.chain(("&&",), self.atom))

    def chain(self, ops: tuple[str, ...], operand: Callable[[], Matcher]) -> Matcher:
        left = operand()
        while self.peek() in ops:
            op, right, first = self.take(), operand(), left
            left = both(first, right) if op == "&&" else one_of(first, right)
        return left

    def atom(self) -> Matcher:
        word = self.take()
        if word == "(":
            inner = self.expression()
            if self.take() != ")":
                raise NotUnderstood("unbalanced parentheses")
            return inner
        if not word.startswith("$."):
            raise NotUnderstood(f"{word!r} is not a $. field")
        op = self.take()
        if op in ("=", "!="):
            return compare(word, op, self.take())
        if op == "NOT" and self.take() == "EXISTS":
            return lambda event: field(event, word) is None
        raise NotUnderstood(f"{word} {op}: only =, != and NOT EXISTS are read")


def both(a: Matcher, b: Matcher) -> Matcher:
    return lambda event: a(event) and b(event)


def one_of(a: Matcher, b: Matcher) -> Matcher:
    return lambda event: a(event) or b(event)


def readings(pattern: str) -> list[Matcher]:
    """The pattern's matcher under each grouping CloudWatch might apply (raises NotUnderstood)."""
    words = tokens(pattern)
    return [Reader(words, and_first).read() for and_first in (True, False)]


def covers(pattern: str, reference: str, probes: Iterable[Event]) -> bool:
    """Whether ``pattern`` matches every probe that ``reference`` matches, however it groups."""
    wanted = [e for e in probes if all(r(e) for r in readings(reference))]
    try:
        candidates = readings(pattern)
    except NotUnderstood:
        return False
    return all(match(event) for match in candidates for event in wanted)
