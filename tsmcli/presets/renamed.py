"""Preset keys that have a new name. Files, `--set` lines, checkpoints and exported models written with the
old name keep working: the value moves to the new key, with a deprecation warning naming both."""
import logging

RENAMED = {"data.multi_class": "data.multi_label"}  # mmaction2's name; ours says what the model is

log = logging.getLogger("tsmcli")


def current_key(key, source=""):
    """The name a dotted key has now (`--set data.multi_class=...`)."""
    if key in RENAMED:
        log.warning("%s%s is now %s; the old name still works", f"{source}: " if source else "", key, RENAMED[key])
        return RENAMED[key]
    return key


def upgrade(cfg, source=""):
    """A preset mapping (a file's keys, or a resolved preset) with renamed keys under their new names;
    the mapping given is left as it is."""
    for old, new in RENAMED.items():
        *parents, name = old.split(".")
        node = cfg
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or name not in node:
            continue
        cfg = _copy_path(cfg, parents)
        node = cfg
        for part in parents:
            node = node[part]
        value = node.pop(name)
        node.setdefault(new.split(".")[-1], value)
        current_key(old, source)
    return cfg


def _copy_path(cfg, parents):
    """cfg with the dicts along `parents` copied, so that changing them leaves the caller's alone."""
    top = dict(cfg)
    node = top
    for part in parents:
        node[part] = dict(node[part])
        node = node[part]
    return top
