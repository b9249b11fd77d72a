"""Read a mmaction2 0.x Python config (with its `_base_` files) without running it.

mmcv's Config.fromfile executes the file. A config handed to us is data, so the file is parsed with
`ast` and only what configs are made of is evaluated: literals, names assigned earlier in the same
file, dict(...), arithmetic on numbers, + on strings and lists, and f-strings of those. Anything else
(imports, calls of other functions, comprehensions, conditions) is refused, naming the file and line.
The variables are then merged with the bases as mmcv merges them: mappings key by key (unless the
child says `_delete_=True`), anything else replaced; two bases may not set the same key.
"""
import ast
import operator
from pathlib import Path

from ..errors import UserError

_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_SIGNS = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}


class _Refused(Exception):
    def __init__(self, node, what):
        super().__init__(what)
        self.line = getattr(node, "lineno", "?")


class _Names(dict):
    """A file's variables so far; remembers which were read (building blocks such as train_pipeline)."""

    def __init__(self):
        super().__init__()
        self.read = set()


def _evaluate(node, names):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise _Refused(node, f"the name {node.id!r} is not assigned earlier in this file")
        names.read.add(node.id)
        return names[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_evaluate(item, names) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        out = {}
        for key, value in zip(node.keys, node.values):
            if key is None:  # {**other}
                out.update(_mapping(value, names))
            else:
                out[_evaluate(key, names)] = _evaluate(value, names)
        return out
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        out = {}
        for keyword in node.keywords:
            if keyword.arg is None:  # dict(**other)
                out.update(_mapping(keyword.value, names))
            else:
                out[keyword.arg] = _evaluate(keyword.value, names)
        return out
    if isinstance(node, ast.UnaryOp) and type(node.op) in _SIGNS:
        return _SIGNS[type(node.op)](_evaluate(node.operand, names))
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _evaluate(node.left, names), _evaluate(node.right, names)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        joined = isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(left, (str, list, tuple))
        if numbers or joined:
            return _ARITHMETIC[type(node.op)](left, right)
        raise _Refused(node, f"{ast.unparse(node)!r} combines {type(left).__name__} and {type(right).__name__}")
    if isinstance(node, ast.JoinedStr):
        return "".join(_format(part, names) for part in node.values)
    raise _Refused(node, f"{ast.unparse(node)!r} needs Python to evaluate")


def _format(part, names):
    if isinstance(part, ast.Constant):
        return part.value
    if part.conversion != -1 or part.format_spec is not None:
        raise _Refused(part, "f-string conversions and format specs need Python to evaluate")
    value = _evaluate(part.value, names)
    if not isinstance(value, (str, int, float)):
        raise _Refused(part, f"an f-string of a {type(value).__name__}")
    return str(value)


def _mapping(node, names):
    value = _evaluate(node, names)
    if not isinstance(value, dict):
        raise _Refused(node, f"** of a {type(value).__name__}")
    return value


def _variables(path):
    """The module-level assignments of one file, in order, and its `_base_` list."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except FileNotFoundError:
        raise UserError(f"mmaction2 config {path} does not exist") from None
    except SyntaxError as e:
        raise UserError(f"{path} line {e.lineno}: not valid Python ({e.msg})") from None
    names = _Names()
    for statement in tree.body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            kind = type(statement).__name__.lower()
            raise UserError(f"{path} line {statement.lineno}: {kind} statements need Python to run; `tsm presets "
                            "import` reads configs made of assignments (NAME = value) only. Replace it by the "
                            "values it produces.")
        try:
            names[statement.targets[0].id] = _evaluate(statement.value, names)
        except _Refused as e:
            raise UserError(f"{path} line {e.line}: {e}; `tsm presets import` evaluates literals, dict(...), "
                            "names assigned above, arithmetic and f-strings only, so write the value "
                            "itself") from None
    base = names.pop("_base_", [])
    return names, [base] if isinstance(base, str) else list(base)


def _merge(child, base):
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and not value.get("_delete_", False) and isinstance(out.get(key), dict):
            out[key] = _merge(value, out[key])
        else:
            out[key] = _strip_delete(value)
    return out


def _strip_delete(value):
    if isinstance(value, dict):
        return {k: _strip_delete(v) for k, v in value.items() if k != "_delete_"}
    return value


def _plain(value):
    """Tuples as lists, as mmaction2's configs read back from JSON (and as our presets hold them)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def read_config(path, _seen=()):
    """A mmaction2 config file -> (its resolved variables, as mmcv's Config.fromfile would give them;
    the files read, the file itself first; the variables some other variable's value was built from)."""
    path = Path(path).resolve()
    if path in _seen:
        raise UserError(f"{path}: its _base_ files include it again (a cycle)")
    names, bases = _variables(path)
    merged, files, owner, read = {}, [path], {}, set(names.read)
    for base in bases:
        if not isinstance(base, str):
            raise UserError(f"{path}: _base_ must be a file name or a list of file names")
        base_cfg, base_files, base_read = read_config(path.parent / base, _seen + (path,))
        for key in base_cfg:
            if key in merged:
                raise UserError(f"{path}: its bases {owner[key].name} and {Path(base).name} both set {key!r} "
                                "(mmcv refuses that too)")
            owner[key] = path.parent / base
        merged.update(base_cfg)
        files += base_files
        read |= base_read
    names = {k: v for k, v in names.items() if not k.startswith("__")}
    return _plain(_merge(names, merged)), files, read
