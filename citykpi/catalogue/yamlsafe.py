"""Safe YAML loading that keeps ``line:col`` marks and refuses anything that could run code or hang.

The loader builds plain Python values straight from the parser's event stream (libyaml's C parser
when available) — it never calls a YAML constructor that can import or execute anything:

* mappings become :class:`YMap` (a ``dict`` that remembers where each key and value is),
  sequences become :class:`YSeq` (a ``list`` that remembers where each item is);
* scalars are resolved with the YAML core rules (str, int, float, bool, null, dates);
* every tag that is not a plain core tag (``!!python/...``, ``!custom``, ``!!binary``…) is refused;
* duplicate keys, tabs in indentation, file size, nesting depth, alias count and the size of the
  document with aliases expanded (alias bombs) are checked, each reported with ``file:line:col``.

The building is iterative (no recursion), so a 10,000-deep document cannot overflow the stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
import yaml.reader
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from citykpi.catalogue.diagnostics import Diagnostic, diagnostic
from citykpi.errors import CatalogueError, Location

#: Refuse files larger than this many bytes.
MAX_BYTES = 5 * 1024 * 1024
#: Refuse documents nested deeper than this (mappings and sequences).
MAX_DEPTH = 64
#: Refuse documents that use more aliases (``*name``) than this.
MAX_ALIASES = 100
#: Refuse documents whose size with every alias expanded exceeds this many nodes.
MAX_NODES = 1_000_000

_PARSER: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_STR = _CORE + "str"
_MAP = _CORE + "map"
_SEQ = _CORE + "seq"
_MERGE = _CORE + "merge"
#: First character -> [(tag, regexp)] of the YAML implicit resolvers ('' for the empty scalar).
_IMPLICIT: dict[str, list[tuple[str, Any]]] = {
    k: list(v) for k, v in Resolver.yaml_implicit_resolvers.items() if isinstance(k, str)
}
_CONSTRUCTOR = SafeConstructor()
_LEADING_TAB = re.compile(r"^ *\t", re.MULTILINE)


def _at(file: str, mark: Any) -> Location:
    """A parser mark (0-based line/column) as a 1-based Location."""
    return Location(file, mark.line + 1, mark.column + 1)


class YMap(dict[str, Any]):
    """A YAML mapping (keys are always the key's text) with the location of each key and value.

    Marks are kept as the parser's raw marks and turned into :class:`Location` only when asked
    for, because most are never needed.
    """

    __slots__ = ("key_marks", "loc", "value_marks")

    def __init__(self, loc: Location) -> None:
        super().__init__()
        self.loc = loc
        self.key_marks: dict[str, Any] = {}
        self.value_marks: dict[str, Any] = {}

    def key_loc(self, key: str) -> Location:
        """Where ``key`` is written (the mapping's own location if absent)."""
        mark = self.key_marks.get(key)
        return self.loc if mark is None else _at(self.loc.file, mark)

    def value_loc(self, key: str) -> Location:
        """Where the value of ``key`` starts (the mapping's own location if absent)."""
        mark = self.value_marks.get(key)
        return self.loc if mark is None else _at(self.loc.file, mark)


class YSeq(list[Any]):
    """A YAML sequence with the location of itself and of each item."""

    __slots__ = ("item_marks", "loc")

    def __init__(self, loc: Location) -> None:
        super().__init__()
        self.loc = loc
        self.item_marks: list[Any] = []

    def item_loc(self, index: int) -> Location:
        """Where item ``index`` starts."""
        if 0 <= index < len(self.item_marks):
            return _at(self.loc.file, self.item_marks[index])
        return self.loc


@dataclass(frozen=True, slots=True)
class YamlResult:
    """The loaded document (``None`` when it could not be loaded) and every problem found."""

    data: Any
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the document loaded and no error was found."""
        return self.data is not None and not any(d.severity == "error" for d in self.diagnostics)


class _Abort(Exception):
    """Stops loading: the document cannot be used."""

    def __init__(self, diag: Diagnostic) -> None:
        super().__init__(diag.message)
        self.diag = diag


class _Frame:
    """A mapping or sequence under construction."""

    __slots__ = ("anchor", "key", "key_mark", "key_plain", "merges", "obj", "size")

    def __init__(self, obj: YMap | YSeq, anchor: str | None) -> None:
        self.obj = obj
        self.anchor = anchor
        self.key: str | None = None
        self.key_mark: Any = None
        self.key_plain = False
        self.merges: list[tuple[Any, Any]] = []
        self.size = 1


def load_yaml_file(path: str | Path, *, display: str | None = None) -> YamlResult:
    """Load one YAML file safely; never raises for a bad file, reports it instead.

    Args:
        path: the file to read.
        display: the file name used in locations (default: ``str(path)``).

    Returns:
        A :class:`YamlResult` with the document and its diagnostics.
    """
    name = display if display is not None else str(path)
    where = Location(name)
    try:
        size = Path(path).stat().st_size
        if size > MAX_BYTES:
            return YamlResult(None, (_too_large(size, where),))
        raw = Path(path).read_bytes()
    except OSError as exc:
        return YamlResult(None, (diagnostic("CK006", f"cannot read the file: {exc.strerror or exc}", where),))
    return load_yaml_bytes(raw, name)


def load_yaml_bytes(raw: bytes, name: str = "<string>") -> YamlResult:
    """Load YAML from bytes (UTF-8, optional BOM) safely; see :func:`load_yaml_text`."""
    if len(raw) > MAX_BYTES:
        return YamlResult(None, (_too_large(len(raw), Location(name)),))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return YamlResult(
            None,
            (
                diagnostic(
                    "CK006",
                    f"the file is not UTF-8 (byte {exc.start} on line {line})",
                    Location(name, line),
                    hint="save the file as UTF-8",
                ),
            ),
        )
    return load_yaml_text(text, name)


def load_yaml_text(text: str, name: str = "<string>") -> YamlResult:
    """Load one YAML document from text safely, collecting every problem it can find.

    Args:
        text: the YAML text.
        name: the file name used in locations.

    Returns:
        A :class:`YamlResult`; ``data`` is ``None`` when the document is unusable (syntax error,
        unsafe tag, over a limit). An empty document gives ``data=None`` and no diagnostics.
    """
    if len(text) > MAX_BYTES:
        return YamlResult(None, (_too_large(len(text.encode("utf-8", "replace")), Location(name)),))
    diags: list[Diagnostic] = []
    try:
        data = _Builder(name, diags).build(text)
    except _Abort as abort:
        # Tabs are legal inside flow collections and block scalars, so they are only reported
        # when the document fails to parse — then they are nearly always the reason.
        tabs = _tab_diagnostics(text, name) if abort.diag.rule == "CK001" else []
        diags.extend(tabs)
        if not any(t.location.line == abort.diag.location.line for t in tabs):
            diags.append(abort.diag)
        return YamlResult(None, tuple(diags))
    return YamlResult(data, tuple(diags))


def _tab_diagnostics(text: str, name: str) -> list[Diagnostic]:
    """A CK003 for every line indented with a tab."""
    if "\t" not in text:
        return []
    return [
        diagnostic(
            "CK003",
            "a tab is used for indentation",
            Location(name, text.count("\n", 0, m.start()) + 1, m.end() - m.start()),
            hint="indent with spaces only",
        )
        for m in _LEADING_TAB.finditer(text)
    ]


#: A character YAML does not allow in a document (control characters other than tab, LF, CR, NEL).
_FORBIDDEN = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CHARACTER_NAMES = {"\x00": "NUL", "\x1b": "ESC", "\x7f": "DEL"}


def _forbidden_character(text: str, name: str) -> Diagnostic:
    """CK001 at the line:col of the first character YAML forbids in ``text``."""
    m = _FORBIDDEN.search(text)
    if m is None:  # pragma: no cover - the reader refused something, so there is one
        return diagnostic("CK001", "the file holds a character YAML does not allow", Location(name))
    ch = m.group()
    line = text.count("\n", 0, m.start()) + 1
    column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
    label = _CHARACTER_NAMES.get(ch, "a control character")
    return diagnostic(
        "CK001",
        f"the file holds {label} (U+{ord(ch):04X}), which YAML does not allow",
        Location(name, line, column),
        hint="remove it; a catalogue file is plain UTF-8 text (a NUL often means a binary file or UTF-16)",
    )


def safe_load(text: str, name: str = "<string>") -> Any:
    """Load YAML text safely or raise :class:`CatalogueError` with the first problem's location."""
    result = load_yaml_text(text, name)
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if errors:
        first = errors[0]
        raise CatalogueError(f"{first.message} [{first.rule}]", location=first.location, hint=first.hint)
    return result.data


def _too_large(size: int, where: Location) -> Diagnostic:
    return diagnostic(
        "CK004",
        f"the file is {size / 1048576:.1f} MiB, over the {MAX_BYTES // 1048576} MiB limit",
        where,
        hint="split the catalogue into several files",
    )


class _Builder:
    """Builds YMap/YSeq/scalars from parser events, iteratively, with the safety checks."""

    def __init__(self, name: str, diags: list[Diagnostic]) -> None:
        self.name = name
        self.diags = diags
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.aliases = 0
        # Text and plainness of the last scalar seen, for when it turns out to be a key.
        self.key_text = ""
        self.key_plain = False

    def loc(self, mark: Any) -> Location:
        return _at(self.name, mark)

    def build(self, text: str) -> Any:
        loader = _PARSER(text)
        try:
            return self.compose(loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = exc.problem or exc.context or "invalid YAML"
            if exc.context and exc.problem:
                message = f"{exc.problem} ({exc.context})"
            where = self.loc(mark) if mark is not None else Location(self.name)
            if "nesting depth" in message:
                message = f"the document is nested deeper than {MAX_DEPTH} levels ({message})"
                raise _Abort(diagnostic("CK004", message, where)) from None
            hint = None
            if "mapping values are not allowed" in message:
                hint = 'quote text that contains ": ", e.g. description: "Note: …"'
            elif "found character '\\t'" in message or "found character '\t'" in message:
                hint = "indent with spaces only"
            raise _Abort(diagnostic("CK001", message, where, hint)) from None
        except yaml.reader.ReaderError:
            # a character YAML forbids (NUL, other control characters): the reader reports a byte
            # offset into its own buffer, so find the character in the text for a line:col
            raise _Abort(_forbidden_character(text, self.name)) from None
        except yaml.YAMLError as exc:  # pragma: no cover - libyaml reports errors with marks
            raise _Abort(diagnostic("CK001", str(exc), Location(self.name))) from None
        finally:
            loader.dispose()

    def compose(self, loader: Any) -> Any:
        stack: list[_Frame] = []
        root: Any = None
        documents = 0
        check_event, get_event = loader.check_event, loader.get_event
        while check_event():
            ev = get_event()
            kind = type(ev)
            if kind is yaml.ScalarEvent:
                value = self.scalar(ev)
                self.add(stack, value, 1, ev, is_scalar=True)
                if ev.anchor:
                    self.anchors[ev.anchor] = (value, 1)
                if not stack:
                    root = value
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                is_map = kind is yaml.MappingStartEvent
                self.check_tag(ev, _MAP if is_map else _SEQ)
                if len(stack) >= MAX_DEPTH:
                    raise _Abort(
                        diagnostic(
                            "CK004",
                            f"the document is nested deeper than {MAX_DEPTH} levels",
                            self.loc(ev.start_mark),
                        )
                    )
                loc = self.loc(ev.start_mark)
                frame = _Frame(YMap(loc) if is_map else YSeq(loc), ev.anchor)
                if ev.anchor:
                    self.open_anchors.add(ev.anchor)
                # The container's own location is where it starts; attach it to the parent now
                # so that keys/items keep document order.
                if stack:
                    self.attach(stack[-1], frame.obj, ev.start_mark, is_scalar=False)
                stack.append(frame)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                if isinstance(frame.obj, YMap) and frame.merges:
                    self.merge(frame)
                if frame.anchor:
                    self.open_anchors.discard(frame.anchor)
                    self.anchors[frame.anchor] = (frame.obj, frame.size)
                if stack:
                    self.grow(stack[-1], frame.size, ev)
                else:
                    root = frame.obj
            elif kind is yaml.AliasEvent:
                self.aliases += 1
                where = self.loc(ev.start_mark)
                if self.aliases > MAX_ALIASES:
                    raise _Abort(
                        diagnostic("CK004", f"the document uses more than {MAX_ALIASES} aliases", where)
                    )
                if ev.anchor in self.open_anchors:
                    raise _Abort(diagnostic("CK001", f"alias *{ev.anchor} refers to itself", where))
                if ev.anchor not in self.anchors:
                    raise _Abort(diagnostic("CK001", f"alias *{ev.anchor} has no anchor &{ev.anchor}", where))
                value, size = self.anchors[ev.anchor]
                self.key_text, self.key_plain = str(value), False
                self.add(stack, value, size, ev, is_scalar=not isinstance(value, YMap | YSeq))
                if not stack:
                    root = value
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Abort(
                        diagnostic(
                            "CK001",
                            "a catalogue file holds one YAML document (found a second '---')",
                            self.loc(ev.start_mark),
                            hint="split the documents into separate files",
                        )
                    )
        return root

    def add(self, stack: list[_Frame], value: Any, size: int, ev: Any, *, is_scalar: bool) -> None:
        if not stack:
            return
        top = stack[-1]
        self.attach(top, value, ev.start_mark, is_scalar=is_scalar)
        self.grow(top, size, ev)

    def grow(self, frame: _Frame, size: int, ev: Any) -> None:
        frame.size += size
        if frame.size > MAX_NODES:
            raise _Abort(
                diagnostic(
                    "CK004",
                    f"the document expands to more than {MAX_NODES:,} nodes (alias bomb?)",
                    self.loc(ev.start_mark),
                )
            )

    def attach(self, frame: _Frame, value: Any, mark: Any, *, is_scalar: bool) -> None:
        obj = frame.obj
        if type(obj) is YSeq:
            obj.append(value)
            obj.item_marks.append(mark)
            return
        assert isinstance(obj, YMap)
        if frame.key is None:
            if not is_scalar:
                raise _Abort(
                    diagnostic("CK001", "a mapping key must be plain text, not a collection", self.loc(mark))
                )
            frame.key = self.key_text
            frame.key_mark = mark
            frame.key_plain = self.key_plain
            return
        key, key_mark = frame.key, frame.key_mark
        frame.key = None
        if key == "<<" and frame.key_plain:
            frame.merges.append((value, mark))
            return
        if key in obj:
            first = obj.key_marks[key]
            self.diags.append(
                diagnostic(
                    "CK002",
                    f"duplicate key '{key}' (first at line {first.line + 1})",
                    self.loc(key_mark),
                    hint="remove one of them; YAML keeps only one value per key",
                )
            )
            return
        obj[key] = value
        obj.key_marks[key] = key_mark
        obj.value_marks[key] = mark

    def merge(self, frame: _Frame) -> None:
        obj = frame.obj
        assert isinstance(obj, YMap)
        for value, mark in frame.merges:
            sources = value if isinstance(value, YSeq) else [value]
            for src in sources:
                if not isinstance(src, YMap):
                    raise _Abort(
                        diagnostic(
                            "CK001", "a merge key '<<' needs a mapping or list of mappings", self.loc(mark)
                        )
                    )
                for k, v in src.items():
                    if k not in obj:
                        obj[k] = v
                        obj.key_marks[k] = src.key_marks[k]
                        obj.value_marks[k] = src.value_marks[k]

    # Scalars ------------------------------------------------------------------------------

    def scalar(self, ev: Any) -> Any:
        tag = ev.tag
        text: str = ev.value
        plain = bool(ev.implicit[0]) and tag is None
        # Keys are kept as their text (so `no:` stays 'no' and `500105:` stays '500105').
        self.key_text, self.key_plain = text, plain
        if tag is None or tag == "!":
            tag = _STR
            if plain:
                for candidate, regexp in _IMPLICIT.get(text[:1], ()):
                    if regexp.match(text):
                        tag = candidate
                        break
        elif tag not in _SCALAR_TAGS:
            raise _Abort(self.unsafe(tag, ev))
        if tag in (_STR, _MERGE):
            return text
        node = ScalarNode(tag, text, ev.start_mark, ev.end_mark)
        try:
            return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
        except (ConstructorError, ValueError, TypeError) as exc:
            raise _Abort(
                diagnostic(
                    "CK001",
                    f"'{text}' is not a valid {tag.removeprefix(_CORE)}: {exc}",
                    self.loc(ev.start_mark),
                )
            ) from None

    def check_tag(self, ev: Any, expected: str) -> None:
        if ev.tag is not None and ev.tag != "!" and ev.tag != expected:
            raise _Abort(self.unsafe(ev.tag, ev))

    def unsafe(self, tag: str, ev: Any) -> Diagnostic:
        shown = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
        return diagnostic(
            "CK005",
            f"the YAML tag {shown} is not allowed",
            self.loc(ev.start_mark),
            hint="catalogue files use plain YAML only: remove the tag",
        )
