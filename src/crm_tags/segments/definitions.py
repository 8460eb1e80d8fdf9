"""The segments file (segments/segments.yml): read with positions, checked, ordered.

    file = load_segments(path)                    # structure and syntax: SegmentDefinitionError
    file = load_segments(path, vocabulary)        # ... and tags, values, metrics, segments, cycles
    for segment in file.evaluation_order(): ...   # a segment after those it reads

Every mistake is reported at once, each naming the file, line and column, the segment (or
priority list), the offset in its `where` expression when it is there, and what was expected.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from crm_tags import PROJECT_DIR
from crm_tags.segments.expression import (
    Compare,
    ExpressionError,
    Has,
    InList,
    InSegment,
    IsNull,
    Node,
    parse,
    walk,
)
from crm_tags.segments.vocabulary import IDENTIFIER, Vocabulary

SEGMENTS_FILE_ENV = "CRM_SEGMENTS_FILE"
DEFAULT_SEGMENTS_FILE = Path("segments") / "segments.yml"  # relative to the dbt project

SEGMENT_FIELDS = ("code", "label_zh", "label_en", "owner", "description", "where")
SEGMENT_OPTIONAL = ("holdout_percent", "holdout_salt")
LIST_FIELDS = ("code", "segments")
LIST_OPTIONAL = ("label_zh", "label_en", "owner", "description")
TOP_LEVEL = ("segments", "priority_lists")


def segments_file(project_dir: Path | None = None) -> Path:
    """$CRM_SEGMENTS_FILE when set, else segments/segments.yml of the dbt project."""
    configured = os.environ.get(SEGMENTS_FILE_ENV, "").strip()
    if configured:
        return Path(configured).resolve()
    return (project_dir or PROJECT_DIR) / DEFAULT_SEGMENTS_FILE


def segments_file_configured() -> bool:
    """Whether $CRM_SEGMENTS_FILE names the file (then it must exist: a typo in the path is
    an error, not a project without segments)."""
    return bool(os.environ.get(SEGMENTS_FILE_ENV, "").strip())


# --- problems --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefinitionProblem:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    subject: str  # "segment vip_frequent", "priority list spring", or the file
    message: str
    expression: str | None = None  # the where expression, when the mistake is in it
    offset: int | None = None  # 0-based offset of the mistake in the expression
    length: int = 1

    def __str__(self) -> str:
        place = f" (where, offset {self.offset})" if self.offset is not None else ""
        text = f"{self.file}:{self.line}:{self.column}: {self.subject}{place}: {self.message}"
        if self.expression is not None and self.offset is not None:
            lines = self.expression.split("\n")
            start = self.expression.count("\n", 0, self.offset)
            column = self.offset - (self.expression.rfind("\n", 0, self.offset) + 1)
            shown = lines[start]
            width = max(1, min(self.length, len(shown) - column))
            text += f"\n    {shown}\n    {' ' * column}{'^' * width}"
        return text


class SegmentDefinitionError(ValueError):
    """The segments file has mistakes; `problems` lists each, str() says them all."""

    def __init__(self, path: Path | str, problems: list[DefinitionProblem]):
        self.path = Path(path)
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"segment definitions in {path} have {count}; nothing was built:\n"
                         + "\n".join(str(p) for p in problems))


# --- the definitions -------------------------------------------------------------------------


HOLDOUT_BUCKETS = 10_000


def holdout_bucket(salt: str, customer_id: str) -> int:
    """0-9999: the first 32 bits of md5(salt + ':' + customer_id), modulo 10,000. The same
    function as the dbt macro segment_holdout_bucket (macros/segments.sql), on any engine."""
    digest = hashlib.md5(f"{salt}:{customer_id}".encode()).hexdigest()
    return int(digest[:8], 16) % HOLDOUT_BUCKETS


@dataclass(frozen=True)
class Segment:
    code: str
    label_zh: str
    label_en: str
    owner: str
    description: str
    where: str
    tree: Node
    line: int
    holdout_percent: Decimal = Decimal(0)
    holdout_salt: str = ""
    priority_list: str | None = None
    priority_rank: int | None = None  # 1 = first in its list

    @property
    def names_read(self) -> set[str]:
        return {n.field.name for n in walk(self.tree)
                if isinstance(n, (Compare, InList, IsNull, Has))}

    @property
    def segments_read(self) -> list[str]:
        seen: dict[str, None] = {}
        for node in walk(self.tree):
            if isinstance(node, InSegment):
                seen.setdefault(str(node.code.value))
        return list(seen)

    def is_holdout(self, customer_id: str) -> bool:
        """Whether a member is in the holdout group: its bucket is below holdout_percent x 100."""
        return holdout_bucket(self.holdout_salt, customer_id) < int(self.holdout_percent * 100)

    @property
    def definition_hash(self) -> str:
        """Changes when what decides membership changes (not the labels or the owner)."""
        canonical = json.dumps([self.where, str(self.holdout_percent), self.holdout_salt,
                                self.priority_list, self.priority_rank])
        return hashlib.md5(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class PriorityList:
    code: str
    segments: tuple[str, ...]
    line: int
    label_zh: str = ""
    label_en: str = ""
    owner: str = ""
    description: str = ""


@dataclass
class SegmentFile:
    path: Path
    segments: list[Segment]
    priority_lists: list[PriorityList] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exists: bool = True

    def by_code(self) -> dict[str, Segment]:
        return {s.code: s for s in self.segments}

    def dependencies(self, segment: Segment) -> list[str]:
        """The segments `segment` is computed from: those its where reads with in_segment(), and
        those before it in its priority list."""
        deps = list(segment.segments_read)
        if segment.priority_list is not None:
            plist = next(p for p in self.priority_lists if p.code == segment.priority_list)
            deps += [c for c in plist.segments[: (segment.priority_rank or 1) - 1]
                     if c not in deps]
        return deps

    def evaluation_order(self) -> list[Segment]:
        """Segments after the segments they depend on, else in file order (no cycles: checked)."""
        by_code, done, order = self.by_code(), set(), []
        remaining = list(self.segments)
        while remaining:
            ready = next(s for s in remaining
                         if all(d in done or d not in by_code for d in self.dependencies(s)))
            order.append(ready)
            done.add(ready.code)
            remaining.remove(ready)
        return order


def load_segments(path: Path | None = None, vocabulary: Vocabulary | None = None,
                  *, required: bool | None = None) -> SegmentFile:
    """Read and check a segments file (default: segments_file()). Without a vocabulary only the
    structure and the syntax are checked. A missing default file means no segments; a missing
    file that was asked for ($CRM_SEGMENTS_FILE, `path`, or required=True) is an error."""
    explicit = path is not None or segments_file_configured()
    path = Path(path) if path is not None else segments_file()
    if not path.exists():
        if required or (required is None and explicit):
            raise SegmentDefinitionError(path, [DefinitionProblem(
                str(path), 1, 1, "segments file", "the file does not exist")])
        return SegmentFile(path, [], exists=False,
                           notes=[f"no segments file at {path}: no segments are built"])
    return _Reader(path, vocabulary).read()


class _Reader:
    def __init__(self, path: Path, vocabulary: Vocabulary | None):
        self.path = path
        self.name = _display(path)
        self.vocabulary = vocabulary
        self.text = path.read_text(encoding="utf-8")
        self.problems: list[DefinitionProblem] = []
        self.where_nodes: dict[str, yaml.Node] = {}  # segment code -> its where scalar
        self.declared: list[str] = []  # every segment code of the file, even a faulty segment's
        self.list_nodes: dict[str, dict[str, yaml.Node]] = {}  # list code -> entry nodes

    def problem(self, node: yaml.Node | None, subject: str, message: str) -> None:
        mark = node.start_mark if node is not None else None
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        self.problems.append(DefinitionProblem(self.name, line, column, subject, message))

    def read(self) -> SegmentFile:
        try:
            root = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise SegmentDefinitionError(self.path, [DefinitionProblem(
                self.name, line, column, "segments file",
                f"not valid YAML: {getattr(error, 'problem', None) or error}")]) from None
        segments: list[Segment] = []
        lists: list[PriorityList] = []
        if root is None:
            return SegmentFile(self.path, [], notes=[f"{self.name} is empty: no segments"])
        top = self.mapping(root, "segments file", (), TOP_LEVEL)
        if top is not None:
            for item in self.sequence(top.get("segments"), "segments file", "segments"):
                segment = self.segment(item)
                if segment is not None:
                    segments.append(segment)
            for item in self.sequence(top.get("priority_lists"), "segments file",
                                      "priority_lists"):
                plist = self.priority_list(item)
                if plist is not None:
                    lists.append(plist)
        segments = self.check_codes(segments)
        segments = self.apply_priority_lists(segments, lists)
        if self.vocabulary is not None:
            self.check_meaning(segments)
        self.check_cycles(segments, lists)
        if self.problems:
            self.problems.sort(key=lambda p: (p.line, p.column))
            raise SegmentDefinitionError(self.path, self.problems)
        notes = list(self.vocabulary.notes) if self.vocabulary else []
        return SegmentFile(self.path, segments, lists, notes)

    # --- YAML structure ---------------------------------------------------------------------

    def mapping(self, node: yaml.Node, subject: str, required: Iterable[str],
                optional: Iterable[str]) -> dict[str, yaml.Node] | None:
        allowed = list(required) + list(optional)
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, subject, f"expected a mapping with {', '.join(allowed)}")
            return None
        fields: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key not in allowed:
                self.problem(key_node, subject, f"unknown field '{key}'; expected one of: "
                             f"{', '.join(allowed)}")
            elif key in fields:
                self.problem(key_node, subject, f"field '{key}' is given twice")
            else:
                fields[key] = value_node
        missing = [k for k in required if k not in fields]
        if missing:
            self.problem(node, subject, f"missing field{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)}")
        return fields

    def sequence(self, node: yaml.Node | None, subject: str, key: str) -> list[yaml.Node]:
        if node is None or (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, subject, f"{key}: expected a list (items starting with '- ')")
            return []
        return list(node.value)

    def text_of(self, fields: dict[str, yaml.Node], key: str, subject: str) -> str:
        node = fields.get(key)
        if node is None:
            return ""
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            self.problem(node, subject, f"{key}: expected text")
            return ""
        value = str(node.value).strip()
        if not value:
            self.problem(node, subject, f"{key}: expected text, found nothing")
        return value

    def code_of(self, fields: dict[str, yaml.Node], subject: str) -> str:
        code = self.text_of(fields, "code", subject)
        if code and not IDENTIFIER.fullmatch(code):
            self.problem(fields["code"], subject, f"code '{code}': expected lower-case "
                         "snake_case (a letter, then letters, digits or _)")
        return code

    # --- segments and priority lists -------------------------------------------------------

    def segment(self, node: yaml.Node) -> Segment | None:
        line = node.start_mark.line + 1
        code_node = None
        if isinstance(node, yaml.MappingNode):
            code_node = next((v for k, v in node.value if k.value == "code"), None)
        subject = (f"segment {code_node.value}" if isinstance(code_node, yaml.ScalarNode)
                   and code_node.value else f"the segment at line {line}")
        fields = self.mapping(node, subject, SEGMENT_FIELDS, SEGMENT_OPTIONAL)
        if fields is None:
            return None
        code = self.code_of(fields, subject)
        if code and IDENTIFIER.fullmatch(code) and code not in self.declared:
            self.declared.append(code)
        texts = {k: self.text_of(fields, k, subject) for k in SEGMENT_FIELDS[1:]}
        percent = self.holdout(fields.get("holdout_percent"), subject)
        salt = self.text_of(fields, "holdout_salt", subject) if "holdout_salt" in fields else code
        tree = None
        where_node = fields.get("where")
        if texts["where"]:
            try:
                tree = parse(str(where_node.value))
            except ExpressionError as error:
                self.expression_problem(where_node, subject, error.offset, error.length,
                                        error.message)
        if tree is None or not code or not IDENTIFIER.fullmatch(code):
            return None  # a segment without a usable code or condition is not checked further
        self.where_nodes.setdefault(code, where_node)
        return Segment(code, texts["label_zh"], texts["label_en"], texts["owner"],
                       texts["description"], str(where_node.value), tree, line, percent, salt)

    def holdout(self, node: yaml.Node | None, subject: str) -> Decimal:
        if node is None:
            return Decimal(0)
        try:
            value = Decimal(str(node.value).strip().rstrip("%"))
        except InvalidOperation:
            value = None
        if (value is None or not isinstance(node, yaml.ScalarNode) or not value.is_finite()
                or not 0 <= value < 100 or value != round(value, 2)):
            self.problem(node, subject, f"holdout_percent: expected a number from 0 to 100 "
                         f"(excluded) with at most two decimals, found '{node.value}'")
            return Decimal(0)
        return value

    def priority_list(self, node: yaml.Node) -> PriorityList | None:
        line = node.start_mark.line + 1
        subject = f"the priority list at line {line}"
        fields = self.mapping(node, subject, LIST_FIELDS, LIST_OPTIONAL)
        if fields is None:
            return None
        code = self.code_of(fields, subject)
        subject = f"priority list {code}" if code else subject
        members = []
        for item in self.sequence(fields.get("segments"), subject, "segments"):
            if not isinstance(item, yaml.ScalarNode) or not str(item.value).strip():
                self.problem(item, subject, "segments: expected segment codes")
                continue
            members.append((str(item.value).strip(), item))
        if fields.get("segments") is not None and len(members) < 2:
            self.problem(fields["segments"], subject, "segments: a priority list orders at "
                         "least two segments")
        labels = {k: self.text_of(fields, k, subject) for k in LIST_OPTIONAL if k in fields}
        self.list_nodes.setdefault(code, dict(members))
        return PriorityList(code, tuple(c for c, _ in members), line, **labels)

    def check_codes(self, segments: list[Segment]) -> list[Segment]:
        seen: dict[str, Segment] = {}
        for segment in segments:
            if segment.code in seen:
                self.problems.append(DefinitionProblem(
                    self.name, segment.line, 1, f"segment {segment.code}",
                    f"code '{segment.code}' is already used by the segment at line "
                    f"{seen[segment.code].line}; expected a unique code"))
            else:
                seen[segment.code] = segment
        return list(seen.values())

    def apply_priority_lists(self, segments: list[Segment],
                             lists: list[PriorityList]) -> list[Segment]:
        by_code = {s.code: s for s in segments}
        placed: dict[str, str] = {}
        list_codes: set[str] = set()
        nodes = self.list_nodes
        for plist in lists:
            subject = f"priority list {plist.code}"
            if plist.code in list_codes:
                self.problems.append(DefinitionProblem(self.name, plist.line, 1, subject,
                                     f"code '{plist.code}' is already used by another "
                                     "priority list; expected a unique code"))
            list_codes.add(plist.code)
            for rank, code in enumerate(plist.segments, start=1):
                node = nodes.get(plist.code, {}).get(code)
                if code not in self.declared:
                    self.problem(node, subject, f"unknown segment '{code}'; expected one of: "
                                 f"{', '.join(sorted(self.declared)) or '(none)'}")
                elif code not in by_code:
                    continue  # a faulty segment: its own problems are reported
                elif code in placed:
                    self.problem(node, subject, f"segment {code} is already in priority list "
                                 f"{placed[code]}; a segment is in one priority list at most")
                else:
                    placed[code] = plist.code
                    segment = by_code[code]
                    by_code[code] = Segment(**{**segment.__dict__, "priority_list": plist.code,
                                               "priority_rank": rank})
        return [by_code[s.code] for s in segments]

    # --- meaning and cycles ---------------------------------------------------------------

    def check_meaning(self, segments: list[Segment]) -> None:
        assert self.vocabulary is not None
        codes = self.declared
        for segment in segments:
            node = self.where_nodes.get(segment.code)
            for problem in self.vocabulary.check(segment.tree, codes):
                self.expression_problem(node, f"segment {segment.code}", problem.offset,
                                        problem.length, problem.message, segment)

    def check_cycles(self, segments: list[Segment], lists: list[PriorityList]) -> None:
        file = SegmentFile(self.path, segments, lists)
        by_code = file.by_code()
        state: dict[str, int] = {}  # 1 visiting, 2 done
        stack: list[str] = []
        reported: set[frozenset[str]] = set()

        def visit(code: str) -> None:
            state[code] = 1
            stack.append(code)
            for dep in file.dependencies(by_code[code]):
                if dep not in by_code:
                    continue
                if state.get(dep) == 1:
                    cycle = stack[stack.index(dep):] + [dep]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.cycle_problem(file, cycle)
                elif dep not in state:
                    visit(dep)
            stack.pop()
            state[code] = 2

        for segment in segments:
            if segment.code not in state:
                visit(segment.code)

    def cycle_problem(self, file: SegmentFile, cycle: list[str]) -> None:
        by_code = file.by_code()
        steps = []
        for code, dep in itertools.pairwise(cycle):
            if dep in by_code[code].segments_read:
                steps.append(f"{code} reads in_segment('{dep}')")
            else:
                steps.append(f"{code} comes after {dep} in priority list "
                             f"{by_code[code].priority_list}")
        first, dep = cycle[0], cycle[1]
        message = (f"segments depend on each other in a cycle: {' -> '.join(cycle)} ("
                   + "; ".join(steps) + "); expected segments that do not depend on themselves")
        segment = by_code[first]
        node = next((n for n in walk(segment.tree)
                     if isinstance(n, InSegment) and n.code.value == dep), None)
        where_node = self.where_nodes.get(first)
        if node is not None and where_node is not None:
            self.expression_problem(where_node, f"segment {first}", node.start,
                                    node.end - node.start, message, segment)
        else:
            self.problems.append(DefinitionProblem(self.name, segment.line, 1,
                                                   f"segment {first}", message))

    # --- positions in the file -------------------------------------------------------------

    def expression_problem(self, where_node: yaml.Node | None, subject: str, offset: int,
                           length: int, message: str, segment: Segment | None = None) -> None:
        expression = str(where_node.value) if where_node is not None else (
            segment.where if segment else "")
        if where_node is None:
            line, column = (segment.line if segment else 1), 1
        else:
            line, column = _file_position(self.text, where_node, offset)
        self.problems.append(DefinitionProblem(self.name, line, column, subject, message,
                                               expression, offset, length))


def _file_position(text: str, node: yaml.ScalarNode, offset: int) -> tuple[int, int]:
    """Line and column (1-based) in the file of the expression's character at `offset`: the
    expression's characters are found in order in the scalar's source text (quotes, folding and
    indentation skipped)."""
    expression = str(node.value)
    index = node.start_mark.index
    end = node.end_mark.index
    for position, char in enumerate(expression[: offset + 1]):
        if char.isspace():
            continue
        found = text.find(char, index, end)
        if found < 0:
            break
        if position == offset:
            index = found
            break
        index = found + 1
    # else: the offset is the end of the expression, just after its last character
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def _display(path: Path) -> str:
    # inside dbt (crm_tags.build.run_dbt) paths read as from the project dir, dbt's old cwd
    base = Path(os.environ.get("CRM_PROJECT_DIR") or Path.cwd())
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path)
