"""The three stages meet only on Kafka topics: each imports schemas/ and the shared settings
(smsfunnel.settings, smsfunnel.kafka_config), never another stage (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("producers", "stream_processors", "sinks")
SHARED = {"smsfunnel.settings", "smsfunnel.kafka_config"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("stage", STAGES)
def test_stage_imports_no_other_stage(stage: str) -> None:
    files = sorted((ROOT / stage).rglob("*.py"))
    assert files
    for path in files:
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top not in set(STAGES) - {stage}, f"{path.relative_to(ROOT)} imports {module}"
            if top == "smsfunnel":
                assert module in SHARED, f"{path.relative_to(ROOT)} imports {module}"


def test_schemas_import_no_stage() -> None:
    for path in sorted((ROOT / "schemas").rglob("*.py")):
        tops = {m.split(".")[0] for m in imported_modules(path)}
        assert not tops & {*STAGES, "smsfunnel", "infra"}, path.name
