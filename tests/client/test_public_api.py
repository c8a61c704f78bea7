"""The client's public surface, its import cost and its standard-library-only rule."""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
from pathlib import Path

import tallystick.client
import tallystick.testing

CLIENT = Path(tallystick.client.__file__).parent
EXPECTED = [
    "ClientError",
    "Config",
    "ConfigError",
    "InvalidData",
    "configure",
    "consent",
    "event",
    "forget",
    "record_exception",
    "scrub",
    "set_attributes",
    "set_consent",
    "span",
]


def test_all_is_sorted_and_exactly_the_public_names() -> None:
    """__all__ lists the public names, sorted, and each one exists."""
    assert tallystick.client.__all__ == sorted(tallystick.client.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(tallystick.client, name)
    public = {n for n in vars(tallystick.client) if not n.startswith("_")} - {"annotations", "TYPE_CHECKING"}
    assert public - {"commands"} == set(EXPECTED)  # the commands submodule is public, imported on demand


def test_testing_module_exports_capture() -> None:
    """tallystick.testing exports a sorted, small surface."""
    assert tallystick.testing.__all__ == sorted(tallystick.testing.__all__) == ["Capture", "capture"]


def test_exceptions_share_one_base() -> None:
    """Every client exception derives from ClientError."""
    assert issubclass(tallystick.client.ConfigError, tallystick.client.ClientError)
    assert issubclass(tallystick.client.InvalidData, tallystick.client.ClientError)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_client_imports_only_the_standard_library() -> None:
    """client/ imports the standard library, itself and tallystick.schema._rules, nothing else."""
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(CLIENT.glob("*.py")):
        for module in _imported_modules(path):
            top = module.split(".")[0]
            allowed = top in stdlib or module.startswith("tallystick.client") or module == "tallystick.schema._rules"
            # The click helper imports click when called: only a tool built on click calls it.
            allowed = allowed or (path.name == "commands.py" and module == "click")
            assert allowed or module == "tallystick.schema", f"{path.name} imports {module}"
            if module == "tallystick.schema":
                assert "import _rules" in path.read_text(), path.name


def test_import_loads_no_network_stack_nor_typing(tmp_path: Path) -> None:
    """Importing loads no json, re, enum or functools; configuring with an empty queue adds no network stack or json.

    json (~4 ms with re and enum) is needed only when the session is written at exit,
    functools only when ``span`` decorates a function; re comes with the first name check.
    """
    code = (
        "import sys\n"
        "preloaded = set(sys.modules)  # by the bare interpreter (-S: an editable install's finder would load re)\n"
        "def loaded(names):\n"
        "    return sorted(m for m in names if m in sys.modules and m not in preloaded)\n"
        "import tallystick.client as t\n"
        "print(loaded(('json', 're', 'enum', 'functools', 'typing')))\n"
        f"t.configure(t.Config('mytool', '1.0.0', 'http://127.0.0.1:9', data_dir={str(tmp_path)!r},"
        " install_hooks=False))\n"
        "print(loaded(('typing', 'socket', 'http.client', 'urllib.request', 'ssl', 'msgspec', 'uuid', 'datetime',"
        " 'threading', 'dataclasses', 'pathlib', 'json', 'tallystick.client._scrub')))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "MYTOOL_TELEMETRY": "1",
        "HOME": sysconfig.get_paths()["data"],
        "PYTHONPATH": str(CLIENT.parents[1]),
    }
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    assert result.stdout.split("\n")[:2] == ["[]", "[]"], result.stdout + result.stderr
