"""Which config keys the code reads, found by following the config object through the source (AST).

A key ``judge.model`` counts as read only where ``model`` is taken from the ``judge`` section itself:
``cfg.judge.model``, ``j.model`` after ``j = cfg.judge``, ``p.model`` in a function whose parameter ``p``
receives ``cfg.judge`` at a call site (or is annotated ``JudgeConfig``), ``getattr(j, "model")``; a
section (not the whole config: writing config.yaml reads nothing) handed to ``dataclasses.asdict``/``vars``
or read by ``getattr(section, name)`` with a computed name counts for all its keys. ``.model`` on anything else (``bundle.model``) does not.
The config root is ``cfg`` or ``X.cfg``, a name bound to ``load_config(...)``, or a ``JobConfig``
parameter. Deliberately simple: names are followed within a function and through calls by function
name, which is how the harness hands sections around."""
from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path
from typing import Dict, Iterable, List, Set, Tuple

Key = Tuple[str, ...]
ROOT: Key = ()
WHOLE = ("asdict", "vars", "astuple")
SECTIONS = "harness/core/config/sections.py"


def sections(cls, prefix: Key = ()) -> Dict[Key, type]:
    """{section path: dataclass}, the root included as ()."""
    out, hints = {prefix: cls}, typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(sections(hints[f.name], prefix + (f.name,)))
    return out


def leaf_keys(cls, prefix: Key = ()) -> List[Key]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        sub = hints[f.name]
        out += leaf_keys(sub, prefix + (f.name,)) if dataclasses.is_dataclass(sub) else [prefix + (f.name,)]
    return out


class Reach:
    def __init__(self, config_cls, sources: Dict[str, str]):
        self.secs = sections(config_cls)
        self.by_class = {cls.__name__: path for path, cls in self.secs.items()}
        self.leaves = set(leaf_keys(config_cls))
        self.trees = {name: ast.parse(text) for name, text in sources.items()}
        self.functions: Dict[str, list] = {}
        for tree in self.trees.values():
            for fn in ast.walk(tree):
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions.setdefault(fn.name, []).append(fn)
        self.params: Dict[Tuple[str, str], Set[Key]] = {}      # (function, parameter) -> sections it receives
        self.read: Set[Key] = set()

    def run(self) -> Set[Key]:
        for _ in range(6):                 # call-site bindings flow one call deeper per pass
            before = sum(map(len, self.params.values()))
            for tree in self.trees.values():
                self.scan(tree, self.bindings(tree))
            for fn in (f for fns in self.functions.values() for f in fns):
                self.scan(fn, self.bindings(fn))
            if sum(map(len, self.params.values())) == before:
                break
        return self.read

    def bindings(self, scope) -> Dict[str, Set[Key]]:
        names: Dict[str, Set[Key]] = {"cfg": {ROOT}}
        if not isinstance(scope, ast.Module):
            for a in [*scope.args.posonlyargs, *scope.args.args, *scope.args.kwonlyargs]:
                names.setdefault(a.arg, set()).update(self.params.get((scope.name, a.arg), set()))
                ann = a.annotation
                hint = ann.id if isinstance(ann, ast.Name) else ann.value if isinstance(ann, ast.Constant) else None
                if hint in self.by_class:
                    names.setdefault(a.arg, set()).add(self.by_class[hint])
        for node in nodes(scope):          # aliases: x = cfg.judge; c, m = cfg.client, cfg.model
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    pairs = zip(target.elts, node.value.elts) if isinstance(target, ast.Tuple) and isinstance(
                        node.value, ast.Tuple) else [(target, node.value)]
                    for t, v in pairs:
                        if isinstance(t, ast.Name) and self.resolve(v, names):
                            names.setdefault(t.id, set()).update(self.resolve(v, names))
        return names

    def resolve(self, node, names) -> Set[Key]:
        """The config sections an expression evaluates to (empty: not a config section)."""
        if isinstance(node, ast.Name):
            return set(names.get(node.id, ()))
        if isinstance(node, ast.Attribute):
            if node.attr == "cfg":
                return {ROOT}
            return {p + (node.attr,) for p in self.resolve(node.value, names) if p + (node.attr,) in self.secs}
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "load_config":
            return {ROOT}
        return set()

    def scan(self, scope, names) -> None:
        for node in nodes(scope):
            if isinstance(node, ast.Attribute):
                self.read |= {p + (node.attr,) for p in self.resolve(node.value, names)} & self.leaves
            elif isinstance(node, ast.Call):
                self.call(node, names)

    def call(self, node: ast.Call, names) -> None:
        func = getattr(node.func, "id", getattr(node.func, "attr", None))
        args = [self.resolve(a, names) for a in node.args]
        if func in WHOLE or (func == "getattr" and len(node.args) > 1 and not isinstance(node.args[1], ast.Constant)):
            # a section read whole; the root is not (dumping the whole config to YAML consumes nothing)
            self.read |= {k for p in (args[0] if args else ()) if p for k in self.leaves if k[:len(p)] == p}
        elif func == "getattr" and len(node.args) > 1:
            self.read |= {p + (node.args[1].value,) for p in args[0]} & self.leaves
        receiver = self.resolve(node.func.value, names) if isinstance(node.func, ast.Attribute) else set()
        if receiver or any(args) or any(self.resolve(k.value, names) for k in node.keywords):
            for fn in self.functions.get(func, ()):   # the sections reach the parameters of every function so named
                self.bind(fn, node, args, names)

    def bind(self, fn, node: ast.Call, args, names) -> None:
        params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]]
        if params[:1] in (["self"], ["cls"]) and isinstance(node.func, ast.Attribute):
            args = [self.resolve(node.func.value, names), *args]    # cfg.aggregator.build(): self is the section
        pairs = list(zip(params, args)) + [(k.arg, self.resolve(k.value, names)) for k in node.keywords if k.arg]
        for param, secs in pairs:
            if secs:
                self.params.setdefault((fn.name, param), set()).update(secs)


def nodes(scope):
    """A function's nodes (its nested functions included: closures see its names); a module's top-level
    statements only (each function is a scope of its own)."""
    if not isinstance(scope, ast.Module):
        return ast.walk(scope)
    top = [s for s in scope.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return (n for s in top for n in ast.walk(s))


def unread_keys(config_cls, sources: Dict[str, str], name_only: Iterable[str] = ()) -> List[str]:
    """Dotted leaf keys of ``config_cls`` that nothing in ``sources`` (name -> Python text) reads."""
    read = Reach(config_cls, sources).run()
    return [".".join(k) for k in leaf_keys(config_cls) if k not in read and ".".join(k) not in name_only]


def package_sources(root: Path, folders=("harness", "launchers", "baselines")) -> Dict[str, str]:
    """The consumers' source. harness/core/config/sections.py counts without its ``validate`` methods: checking
    a key is not using it, while a section's own method (``aggregator.build()``) is."""
    out = {str(p.relative_to(root)): p.read_text() for d in folders for p in sorted((root / d).rglob("*.py"))}
    tree = ast.parse(out[SECTIONS])
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        cls.body = [s for s in cls.body if not (isinstance(s, ast.FunctionDef) and s.name == "validate")] or [ast.Pass()]
    out[SECTIONS] = ast.unparse(tree)
    return out
