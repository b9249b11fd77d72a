"""A resolved preset written as YAML that reads like the preset files (config.yaml in a work dir)."""
import yaml


class PresetDumper(yaml.SafeDumper):
    """Mappings in block style; lists of plain values (and of such lists) on one line."""


def _represent_list(dumper, data):
    flow = all(not isinstance(x, (dict, list)) for x in data) or all(isinstance(x, list) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_dict(dumper, data):
    flow = bool(data) and all(isinstance(k, int) and isinstance(v, int) for k, v in data.items())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


PresetDumper.add_representer(list, _represent_list)
PresetDumper.add_representer(dict, _represent_dict)


def dump_preset(cfg):
    """The preset as YAML text, keys in their order."""
    return yaml.dump(cfg, Dumper=PresetDumper, sort_keys=False, width=110, allow_unicode=True)
