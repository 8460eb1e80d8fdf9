"""The `where` language of a segment: tokens, a recursive-descent parser, the syntax tree.

    expression  := or_expr
    or_expr     := and_expr ("or" and_expr)*
    and_expr    := not_expr ("and" not_expr)*
    not_expr    := "not" not_expr | primary
    primary     := "(" expression ")"
                 | "in_segment" "(" STRING ")"
                 | NAME ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") literal
                 | NAME ["not"] "in" "(" literal ("," literal)* ")"
                 | NAME "is" ["not"] "null"
                 | NAME "has" STRING
    literal     := STRING | NUMBER

Keywords are case-insensitive; strings are in single quotes ('it''s' holds a quote); numbers are
decimal (-12, 10000, 0.5). Every node keeps its span (start, end offsets in the expression), so
a later check (an unknown tag, a value outside the catalog) can point at the exact text. What a
name means (a tag, a multi-valued tag, a metric) is decided by crm_tags.segments.vocabulary; this
module only knows the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "has"})
IN_SEGMENT = "in_segment"
COMPARISONS = ("=", "!=", "<>", "<", "<=", ">", ">=")
EXPECTED_OPERATOR = "an operator (=, !=, <, <=, >, >=, in, not in, is null, is not null, has)"

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+(?:\.\d*)?|\.\d+)(?![A-Za-z_]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<string>')
    """,
    re.VERBOSE,
)


class ExpressionError(ValueError):
    """A syntax error: `offset` (0-based) in the expression, `length` of the offending text."""

    def __init__(self, message: str, offset: int, length: int = 1):
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = max(length, 1)


@dataclass(frozen=True)
class Token:
    kind: str  # name, keyword, number, string, op, punct, end
    text: str  # as written (a string's text without its quotes, '' unescaped)
    start: int
    end: int

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the expression"
        if self.kind == "string":
            return f"the value '{self.text}'"
        return f"'{self.text}'"


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            char = expression[position]
            hint = "; values are in single quotes" if char == '"' else ""
            raise ExpressionError(f"unexpected character {char!r}{hint}", position)
        kind = match.lastgroup or ""
        if kind == "string":
            text, end = _read_string(expression, position)
            tokens.append(Token("string", text, position, end))
            position = end
            continue
        text = match.group()
        if kind == "name" and text.lower() in KEYWORDS:
            tokens.append(Token("keyword", text.lower(), position, match.end()))
        elif kind != "space":
            tokens.append(Token(kind, text, position, match.end()))
        position = match.end()
    tokens.append(Token("end", "", len(expression), len(expression)))
    return tokens


def _read_string(expression: str, start: int) -> tuple[str, int]:
    chars = []
    position = start + 1
    while position < len(expression):
        char = expression[position]
        if char == "\x00":
            raise ExpressionError("unexpected NUL character in a value", position)
        if char == "'":
            if expression[position + 1 : position + 2] == "'":
                chars.append("'")
                position += 2
                continue
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    raise ExpressionError("unterminated value: a closing ' is missing", start,
                          len(expression) - start)


# --- the syntax tree -----------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    start: int
    end: int


@dataclass(frozen=True)
class Literal(Node):
    value: str | Decimal  # a quoted value, or a number

    @property
    def is_number(self) -> bool:
        return isinstance(self.value, Decimal)


@dataclass(frozen=True)
class Name(Node):
    name: str  # lower-cased


@dataclass(frozen=True)
class Compare(Node):
    field: Name
    op: str  # = != < <= > >= ("<>" is stored as "!=")
    value: Literal


@dataclass(frozen=True)
class InList(Node):
    field: Name
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class IsNull(Node):
    field: Name
    negated: bool  # is not null


@dataclass(frozen=True)
class Has(Node):
    field: Name
    value: Literal


@dataclass(frozen=True)
class InSegment(Node):
    code: Literal  # the quoted segment code


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # and, or
    operands: tuple[Node, ...]


def walk(node: Node):
    """Every node of the tree, parents first."""
    yield node
    if isinstance(node, Not):
        yield from walk(node.operand)
    elif isinstance(node, BoolOp):
        for operand in node.operands:
            yield from walk(operand)


# --- the parser ----------------------------------------------------------------------------


def parse(expression: str) -> Node:
    """The syntax tree of `expression`; raises ExpressionError naming what was expected."""
    if not expression.strip():
        raise ExpressionError("the expression is empty; expected a condition such as "
                              "customer_grade = 'vip'", 0)
    return _Parser(tokenize(expression)).parse()


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.position = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            self.fail(what)
        return self.advance()

    def fail(self, expected: str, token: Token | None = None) -> None:
        token = token or self.current
        raise ExpressionError(f"expected {expected}, found {token.describe()}", token.start,
                              token.end - token.start)

    def parse(self) -> Node:
        node = self.or_expr()
        if not self.at("end"):
            self.fail("and, or, or the end of the expression")
        return node

    def or_expr(self) -> Node:
        return self._bool("or", self.and_expr)

    def and_expr(self) -> Node:
        return self._bool("and", self.not_expr)

    def _bool(self, op: str, operand) -> Node:
        operands = [operand()]
        while self.at("keyword", op):
            self.advance()
            operands.append(operand())
        if len(operands) == 1:
            return operands[0]
        return BoolOp(operands[0].start, operands[-1].end, op, tuple(operands))

    def not_expr(self) -> Node:
        if self.at("keyword", "not"):
            start = self.advance().start
            operand = self.not_expr()
            return Not(start, operand.end, operand)
        return self.primary()

    def primary(self) -> Node:
        token = self.current
        if self.at("punct", "("):
            self.advance()
            inner = self.or_expr()
            if not self.at("punct", ")"):
                self.fail(f"')' to close the '(' at offset {token.start}")
            end = self.advance().end
            # the parentheses belong to the span: an error about the group points at all of it
            return _respan(inner, token.start, end)
        if token.kind != "name":
            self.fail("a tag, a metric, in_segment('code'), not, or '('")
        name_token = self.advance()
        if name_token.text.lower() == IN_SEGMENT and self.at("punct", "("):
            return self.in_segment(name_token)
        field = Name(name_token.start, name_token.end, name_token.text.lower())
        return self.predicate(field)

    def in_segment(self, name_token: Token) -> Node:
        self.advance()  # (
        if not self.at("string"):
            self.fail("a segment code in single quotes, as in in_segment('vip_frequent')")
        code = self.literal()
        end = self.expect("punct", ")", "')' after the segment code").end
        return InSegment(name_token.start, end, code)

    def predicate(self, field: Name) -> Node:
        token = self.current
        if token.kind == "op":
            self.advance()
            op = "!=" if token.text == "<>" else token.text
            value = self.literal(f"a value in single quotes or a number after '{token.text}'")
            return Compare(field.start, value.end, field, op, value)
        if self.at("keyword", "is"):
            self.advance()
            negated = self.at("keyword", "not")
            if negated:
                self.advance()
            end = self.expect("keyword", "null", "null after 'is'" if not negated
                              else "null after 'is not'").end
            return IsNull(field.start, end, field, negated)
        if self.at("keyword", "not") or self.at("keyword", "in"):
            negated = self.at("keyword", "not")
            if negated:
                self.advance()
                if not self.at("keyword", "in"):
                    self.fail("in after 'not' (as in tag not in ('a', 'b'))")
            self.advance()  # in
            self.expect("punct", "(", "'(' to open the list of values")
            values = [self.literal("a value in single quotes or a number")]
            while self.at("punct", ","):
                self.advance()
                values.append(self.literal("a value in single quotes or a number after ','"))
            end = self.expect("punct", ")", "',' or ')' to close the list of values").end
            return InList(field.start, end, field, tuple(values), negated)
        if self.at("keyword", "has"):
            self.advance()
            value = self.literal("a value in single quotes after 'has'")
            return Has(field.start, value.end, field, value)
        self.fail(EXPECTED_OPERATOR + f" after '{field.name}'")
        raise AssertionError  # fail() raised

    def literal(self, expected: str = "a value in single quotes") -> Literal:
        token = self.current
        if token.kind == "string":
            self.advance()
            return Literal(token.start, token.end, token.text)
        if token.kind == "number":
            self.advance()
            return Literal(token.start, token.end, Decimal(token.text))
        self.fail(expected)
        raise AssertionError


def _respan(node: Node, start: int, end: int) -> Node:
    fields = {k: getattr(node, k) for k in node.__dataclass_fields__}
    fields.update(start=start, end=end)
    return type(node)(**fields)
