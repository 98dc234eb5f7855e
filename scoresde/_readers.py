"""Strict readers of the JSON and YAML files users write (run configs, study specs, mixtures).

Both refuse, with one line naming the file and what was found:

* a key given twice in one mapping (YAML and JSON readers otherwise keep the last one silently);
* any YAML tag that builds a Python object (``!!python/object``, ``!!python/name`` ...): the
  file is read with a safe loader, so nothing in it runs, and the tag is named;
* malformed text (with the line and column).

Numbers written ``1e-3`` are read as numbers: PyYAML follows YAML 1.1, which reads an exponent
without a dot as a string, so that a quoted ``'100'`` and an unquoted ``1e-3`` can be told apart
(the first is a string, refused where a number is expected).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["read_json", "read_yaml"]


def _loader() -> Any:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """Safe loading, no duplicate keys, YAML 1.2 floats."""

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in out:
                line = key_node.start_mark.line + 1
                raise _Duplicate(f"key {key!r} given twice (again at line {line})")
            out[key] = loader.construct_object(value_node, deep=deep)
        return out

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    float_re = re.compile(
        r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$|^[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$"
    )
    StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", float_re, list("-+0123456789."))
    return StrictLoader


class _Duplicate(ValueError):
    pass


def read_yaml(text: str, what: str) -> Any:
    """Parse YAML ``text`` strictly (see the module docstring).

    Args:
        text: The file's text.
        what: The file's name for messages (e.g. ``"config cfg.yaml"``).

    Raises:
        ValueError: For malformed text, a duplicate key or a tag that builds a Python object.
    """
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 (a SafeLoader subclass)
    except _Duplicate as err:
        raise ValueError(f"{what}: expected each key once, received {err}") from None
    except yaml.constructor.ConstructorError as err:
        mark = err.problem_mark
        at = f" at line {mark.line + 1}" if mark else ""
        tag = (err.problem or "").split("tag ")[-1].strip("'").replace("tag:yaml.org,2002:", "!!")
        raise ValueError(
            f"{what}: expected plain YAML (numbers, strings, lists, mappings), received the tag "
            f"{tag}{at}; tags that build Python objects are refused (nothing was run)"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{what}: expected valid YAML, received malformed text{at}") from None


def read_json(text: str, what: str) -> Any:
    """Parse JSON ``text`` strictly: malformed text or a duplicate key is a ``ValueError``."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise _Duplicate(f"key {k!r} given twice")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise _Duplicate(f"the non-standard number {name}")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except _Duplicate as err:
        raise ValueError(
            f"{what}: expected valid JSON with each key once, received {err}"
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{what}: expected valid JSON, received malformed text ({err})") from None
