"""Pack an orb source tree into one orb YAML document, the way ``circleci orb pack`` does.

CircleCI's orb development kit keeps an orb as a directory tree (``src/``)::

    @orb.yml            version, description, display: the top of the packed document
    commands/x.yml      becomes ``commands: {x: ...}``; likewise jobs/, executors/, examples/
    scripts/x.sh        not packed itself; pulled in by ``<<include(scripts/x.sh)>>``

Packing rules, matching the real tool (``circleci orb pack``):

- every directory becomes a mapping key; every ``*.yml``/``*.yaml`` file in it becomes a key
  named after the file without its extension;
- a file whose name starts with ``@`` is merged into its directory's mapping instead
  (``src/@orb.yml`` is the orb's top level, and must exist);
- files that are not YAML are ignored, except as targets of an include;
- ``<<include(path)>>`` is replaced by the content of ``path`` (relative to the source
  root) only when it is the *whole* string value; an include inside a longer string, or
  two includes in one value, is an error, as in the real tool.

Usage::

    python -m circleback.orbpack orbs/circleback/src > orb.yml
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from circleback.errors import ConfigurationError

__all__ = ["find_orb_src", "main", "pack_orb", "pack_orb_yaml"]

ORB_ROOT_FILE = "@orb.yml"
YAML_SUFFIXES = (".yml", ".yaml")

#: The real tool's include syntax: optional spaces inside the brackets, a plain path.
_INCLUDE = re.compile(r"<<\s*include\(([-\w/.]+)\)\s*>>")


def pack_orb(src_dir: Path) -> dict[str, Any]:
    """Assemble the orb source tree at ``src_dir`` into one orb mapping.

    Raises :class:`~circleback.errors.ConfigurationError` when ``src_dir`` has no
    ``@orb.yml``, a YAML file does not parse or is not a mapping, two files claim the
    same key, or an include is malformed or names a missing file.
    """
    src_dir = Path(src_dir)
    if not (src_dir / ORB_ROOT_FILE).is_file():
        raise ConfigurationError(
            f"{src_dir / ORB_ROOT_FILE} not found: {src_dir} is not an orb source root",
            hint="Point at the orb's src/ directory, the one that holds @orb.yml.",
        )
    resolved: dict[str, Any] = _resolve_includes(_pack_directory(src_dir), src_dir, where="")
    return resolved


def pack_orb_yaml(src_dir: Path) -> str:
    """Pack ``src_dir`` (see :func:`pack_orb`) and render it as one YAML document.

    Scripts are written as ``|`` blocks and one-paragraph descriptions as ``>`` blocks, so
    the packed orb stays readable; the order of keys is @orb.yml's first, then the
    directories, each sorted by file name.
    """
    return yaml.dump(
        pack_orb(src_dir),
        Dumper=_OrbDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def find_orb_src() -> Path:
    """Locate circleback's own orb source: bundled in the wheel, else the repo checkout."""
    here = Path(__file__).resolve().parent
    candidates = (
        here / "_bundled" / "orb",
        here.parent / "orbs" / "circleback" / "src",
    )
    for candidate in candidates:
        if (candidate / ORB_ROOT_FILE).is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise ConfigurationError(
        f"circleback's orb source was not found (tried {tried})",
        hint="Pass the orb's src/ directory explicitly, or reinstall circleback.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m circleback.orbpack [SRC_DIR]``: print the packed orb; 2 on bad input."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(
            "usage: python -m circleback.orbpack [SRC_DIR]\n\n"
            "Pack an orb source tree (default: circleback's own) and print it.\n"
        )
        return 0
    if len(args) > 1:
        sys.stderr.write("usage: python -m circleback.orbpack [SRC_DIR]\n")
        return 2
    try:
        src = Path(args[0]) if args else find_orb_src()
        sys.stdout.write(pack_orb_yaml(src))
    except ConfigurationError as exc:
        sys.stderr.write(f"error: {exc.message}\nhint: {exc.hint}\n")
        return exc.exit_code
    return 0


def _pack_directory(directory: Path) -> dict[str, Any]:
    """One directory's mapping: its @-files merged in, then one key per YAML file or subdir."""
    packed: dict[str, Any] = {}
    entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    # @-files first, so @orb.yml's keys (version, description) lead the packed document.
    for path in (p for p in entries if p.is_file() and p.name.startswith("@")):
        if path.suffix in YAML_SUFFIXES:
            for key, value in _load_mapping(path).items():
                _claim(packed, key, value, path)
    for path in entries:
        if path.is_dir():
            sub = _pack_directory(path)
            if sub:
                _claim(packed, path.name, sub, path)
        elif path.suffix in YAML_SUFFIXES and not path.name.startswith("@"):
            _claim(packed, path.stem, _load_mapping(path), path)
    return packed


def _claim(packed: dict[str, Any], key: str, value: Any, source: Path) -> None:
    if key in packed:
        raise ConfigurationError(
            f"{source}: the key {key!r} is defined twice in the orb source",
            hint="Each component must come from exactly one file; rename or remove one.",
        )
    packed[key] = value


def _load_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigurationError(
            f"{path} is not valid YAML: {exc}",
            hint="Fix the YAML syntax (yamllint shows where), then pack again.",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{path} could not be read: {exc}",
            hint="Check the file's permissions and that it is UTF-8 text.",
        ) from exc
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise ConfigurationError(
            f"{path} is {kind}",
            hint="Every YAML file under an orb's src/ must hold a mapping (one component).",
        )
    return data


def _resolve_includes(node: Any, src_dir: Path, *, where: str) -> Any:
    if isinstance(node, dict):
        return {
            key: _resolve_includes(value, src_dir, where=f"{where}.{key}" if where else str(key))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [
            _resolve_includes(item, src_dir, where=f"{where}[{i}]") for i, item in enumerate(node)
        ]
    if isinstance(node, str):
        return _resolve_string(node, src_dir, where=where)
    return node


def _resolve_string(value: str, src_dir: Path, *, where: str) -> str:
    matches = list(_INCLUDE.finditer(value))
    if not matches:
        return value
    if len(matches) > 1:
        raise ConfigurationError(
            f"{where}: multiple include statements in one value: {value!r}",
            hint="Use one <<include(file)>> per value; combine the files into one script.",
        )
    match = matches[0]
    if match.group(0) != value.strip():
        raise ConfigurationError(
            f"{where}: an include must be the entire value, not part of it: {value!r}",
            hint="Write `command: <<include(scripts/x.sh)>>` and move the rest into the script.",
        )
    target = src_dir / match.group(1)
    try:
        return target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{where}: could not open {target} for inclusion: {exc}",
            hint="Include paths are relative to the orb's src/ directory (scripts/x.sh).",
        ) from exc


class _OrbDumper(yaml.SafeDumper):
    """A safe dumper that keeps scripts as literal blocks and prose as folded blocks."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style: str | None = None
    if "\n" in data.rstrip("\n"):
        style = "|"  # several lines (a script): keep every line break
    elif data.endswith("\n"):
        style = ">"  # one paragraph (a `>` description): fold it back to the page width
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_OrbDumper.add_representer(str, _represent_str)


if __name__ == "__main__":
    raise SystemExit(main())
