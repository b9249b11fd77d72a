"""`--set KEY=VALUE`: overrides of single preset keys, values read as YAML."""
import copy
import re

import yaml

from ..errors import OptionError
from .renamed import current_key
from .schema import SCHEMA, Section, suggest_key

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_override(text):
    if "=" not in text:
        raise OptionError("overrides", text, "expected KEY=VALUE, e.g. model.dropout=0.8", flag="--set")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value) if value != "" else None
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str) and _FLOAT.fullmatch(parsed):  # YAML 1.1 reads 1e-9 as a string
        parsed = float(parsed)
    return key.strip(), parsed


def apply_overrides(cfg, overrides):
    """cfg with each `key=value` (or (key, value)) set; a key the schema does not have is refused, with the
    nearest one."""
    cfg = copy.deepcopy(cfg)
    for text in overrides or ():
        key, value = parse_override(text) if isinstance(text, str) else text
        key = current_key(key, "--set")
        node, schema = cfg, SCHEMA
        parts = key.split(".")
        for i, part in enumerate(parts):
            path = ".".join(parts[: i + 1])
            if not isinstance(schema, Section) or part not in schema.fields:
                options = schema.fields if isinstance(schema, Section) else {}
                raise OptionError("overrides", text, f"unknown key '{path}'"
                                  f"{suggest_key(part, options, '.'.join(parts[:i]) or None)}", flag="--set")
            schema = schema.fields[part]
            if i == len(parts) - 1:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
    return cfg
