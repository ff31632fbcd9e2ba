"""A small renderer of Helm chart templates, for tests on machines without the helm binary.

It implements the part of Go's text/template and Helm's functions our chart uses (actions with
whitespace trimming, if/else/range/with/define, variables, pipelines, include, the sprig functions
below) and raises on anything else, so a template using something new fails the test instead of
rendering wrong. `lookup` finds nothing, as in `helm template`.
"""

from __future__ import annotations

import base64
import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+)|(?P<op>:=|\(|\)|\||,)|'
                    r"(?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)|(?P<field>(?:\.[A-Za-z0-9_]+)+|\.)|"
                    r"(?P<ident>[A-Za-z_][A-Za-z0-9_]*))")  # fmt: skip


class TemplateError(Exception):
    pass


class Fail(TemplateError):
    """The chart's own `fail`: a values error the user would see."""


@dataclass
class Node:
    kind: str  # text, action, if, range, with, define
    value: Any = None
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)


def _lex(source: str) -> list[tuple[str, str]]:
    """[(kind, text)]: text pieces and action contents, with {{- / -}} trimming applied."""
    pieces: list[tuple[str, str]] = []
    position = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[position : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        pieces.append(("text", text))
        pieces.append(("action", match.group(2).strip()))
        trim_next = bool(match.group(3))
        position = match.end()
    tail = source[position:]
    pieces.append(("text", tail.lstrip() if trim_next else tail))
    return pieces


def _parse(pieces, position=0, closers=()):
    nodes: list[Node] = []
    while position < len(pieces):
        kind, text = pieces[position]
        position += 1
        if kind == "text":
            if text:
                nodes.append(Node("text", text))
            continue
        if text.startswith("/*"):
            continue
        word = text.split(None, 1)[0] if text else ""
        if word in closers:
            return nodes, position - 1
        if word in ("if", "range", "with", "define"):
            node = Node(word, text[len(word) :].strip())
            node.body, position = _parse(pieces, position, ("end", "else"))
            closing = pieces[position][1]
            position += 1
            if closing.startswith("else"):
                rest = closing[4:].strip()
                if rest.startswith("if "):  # else if: a nested if closed by the same end
                    inner = Node("if", rest[3:].strip())
                    inner.body, position = _parse(pieces, position, ("end", "else"))
                    pieces_left = pieces[position][1]
                    position += 1
                    if pieces_left.startswith("else"):
                        inner.orelse, position = _parse(pieces, position, ("end",))
                        position += 1
                    node.orelse = [inner]
                else:
                    node.orelse, position = _parse(pieces, position, ("end",))
                    position += 1
            nodes.append(node)
            continue
        if word in ("end", "else"):
            raise TemplateError(f"unexpected {{{{ {text} }}}}")
        nodes.append(Node("action", text))
    if closers:
        raise TemplateError(f"missing {{{{ end }}}} (wanted one of {closers})")
    return nodes, position


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise TemplateError(f"cannot read {text[position:]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class Renderer:
    def __init__(self, chart: Path, values: dict, release: str = "demo", namespace: str = "default") -> None:
        self.chart = chart
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        self.root = {
            "Values": values,
            "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
            "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta.get("appVersion")},
        }
        self.defines: dict[str, list[Node]] = {}
        for helper in sorted((chart / "templates").glob("_*.tpl")):
            self._collect(_parse(_lex(helper.read_text()))[0])

    def _collect(self, nodes) -> None:
        for node in nodes:
            if node.kind == "define":
                self.defines[_unquote(node.value)] = node.body

    def render(self) -> dict[str, str]:
        out = {}
        for template in sorted((self.chart / "templates").glob("*.yaml")):
            nodes, _ = _parse(_lex(template.read_text()))
            self._collect(nodes)
            out[template.name] = self._run(nodes, self.root, {"$": self.root})
        return out

    def documents(self) -> list[dict]:
        docs = []
        for text in self.render().values():
            docs.extend(d for d in yaml.safe_load_all(text) if d)
        return docs

    # --- execution ---
    def _run(self, nodes, dot, scope) -> str:
        out = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.value)
            elif node.kind == "action":
                value = self._statement(node.value, dot, scope)
                if value is not None:
                    out.append(_text(value))
            elif node.kind == "if":
                branch = node.body if _truthy(self._pipeline(node.value, dot, scope)) else node.orelse
                out.append(self._run(branch, dot, scope))
            elif node.kind == "with":
                value = self._pipeline(node.value, dot, scope)
                out.append(self._run(node.body, value, dict(scope)) if _truthy(value) else
                           self._run(node.orelse, dot, scope))  # fmt: skip
            elif node.kind == "range":
                out.append(self._range(node, dot, scope))
        return "".join(out)

    def _range(self, node, dot, scope) -> str:
        names, _, expression = node.value.partition(":=") if ":=" in node.value else ("", "", node.value)
        collection = self._pipeline(expression.strip(), dot, scope)
        variables = [n.strip() for n in names.split(",") if n.strip()]
        if isinstance(collection, dict):
            items = sorted(collection.items())
        else:
            items = list(enumerate(collection or []))
        out = []
        for key, value in items:
            inner = dict(scope)
            if len(variables) == 2:
                inner[variables[0]], inner[variables[1]] = key, value
            elif len(variables) == 1:
                inner[variables[0]] = value
            out.append(self._run(node.body, value, inner))
        return "".join(out)

    def _statement(self, text, dot, scope):
        match = re.match(r"(\$[A-Za-z0-9_]+)\s*:?=\s*(.*)", text, re.S)
        if match:
            scope[match.group(1)] = self._pipeline(match.group(2), dot, scope)
            return None
        return self._pipeline(text, dot, scope)

    def _pipeline(self, text, dot, scope):
        tokens = _tokens(text)
        value, position = self._commands(tokens, 0, dot, scope)
        if position != len(tokens):
            raise TemplateError(f"unexpected {tokens[position]} in {text!r}")
        return value

    def _commands(self, tokens, position, dot, scope):
        value, position, piped = None, position, False
        while True:
            args = []
            while position < len(tokens) and tokens[position][1] not in ("|", ")"):
                kind, text = tokens[position]
                if text == "(":
                    inner, position = self._commands(tokens, position + 1, dot, scope)
                    if position >= len(tokens) or tokens[position][1] != ")":
                        raise TemplateError("missing )")
                    args.append(("value", inner))
                else:
                    args.append((kind, text))
                position += 1
            value = self._command(args, dot, scope, value if piped else _NOTHING)
            if position < len(tokens) and tokens[position][1] == "|":
                position += 1
                piped = True
                continue
            return value, position

    def _command(self, args, dot, scope, piped):
        if not args:
            raise TemplateError("empty command")
        kind, text = args[0]
        if kind == "ident" and text not in ("true", "false", "nil"):
            values = [self._operand(a, dot, scope) for a in args[1:]]
            if piped is not _NOTHING:
                values.append(piped)
            return self._call(text, values, dot)
        if len(args) != 1 or piped is not _NOTHING:
            raise TemplateError(f"not a function: {text}")
        return self._operand(args[0], dot, scope)

    def _operand(self, arg, dot, scope):
        kind, text = arg
        if kind == "value":
            return text
        if kind == "str":
            return _unquote(text)
        if kind == "num":
            return int(text)
        if kind == "ident":
            return {"true": True, "false": False, "nil": None}[text]
        if kind == "field":
            return _walk(dot, text.split(".")[1:])
        if kind == "var":
            name, *path = text.split(".")
            if name not in scope:
                raise TemplateError(f"undefined variable {name}")
            return _walk(scope[name], path)
        raise TemplateError(f"cannot use {text!r} here")

    def _call(self, name, args, dot):
        if name == "include":
            template, context = args
            if template not in self.defines:
                raise TemplateError(f"no template {template!r}")
            return self._run(self.defines[template], context, {"$": self.root})
        if name not in _FUNCTIONS:
            raise TemplateError(f"function {name!r} is not known to this renderer (add it, or use helm)")
        return _FUNCTIONS[name](*args)


_NOTHING = object()


def _walk(value, path):
    for part in path:
        if not part:
            continue
        if isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _unquote(text: str) -> str:
    return text[1:-1].encode().decode("unicode_escape") if text.startswith('"') else text


def _truthy(value) -> bool:
    return bool(value) if value is not None else False


def _text(value) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError(f"printing a map or list directly: {value!r} (use toYaml)")
    return str(value)


def _fail(message):
    raise Fail(message)


def _to_yaml(value) -> str:
    if value in (None, {}, []):
        return "{}" if isinstance(value, dict) or value is None else "[]"
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def _indent(count, text) -> str:
    return "\n".join(" " * count + line if line else line for line in str(text).split("\n"))


def _default(fallback, *value):
    given = value[0] if value else None
    return given if _truthy(given) else fallback


_FUNCTIONS = {
    "quote": lambda *v: " ".join('"' + _text(x).replace("\\", "\\\\").replace('"', '\\"') + '"' for x in v),
    "default": _default,
    "toYaml": _to_yaml,
    "nindent": lambda count, text: "\n" + _indent(count, text),
    "indent": _indent,
    "printf": lambda fmt, *args: re.sub(r"%[sdv]", "{}", fmt).format(*args),
    "trunc": lambda count, text: text[:count],
    "trimSuffix": lambda suffix, text: text[: -len(suffix)] if suffix and text.endswith(suffix) else text,
    "not": lambda value: not _truthy(value),
    "and": lambda *values: next((v for v in values if not _truthy(v)), values[-1]),
    "or": lambda *values: next((v for v in values if _truthy(v)), values[-1]),
    "gt": lambda a, b: a > b,
    "eq": lambda a, b: a == b,
    "int": int,
    "add": lambda *values: sum(int(v) for v in values),
    "fail": _fail,
    "lookup": lambda *args: {},
    "index": lambda collection, *keys: _walk(collection, keys),
    "randAlphaNum": lambda count: "".join(random.choices(string.ascii_letters + string.digits, k=count)),
    "b64enc": lambda text: base64.b64encode(str(text).encode()).decode(),
}
