"""The tool catalog: lookup by the names models send, definitions, and their size."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from koda.providers.base import ToolDefinition
from koda.tools.catalog import ToolCatalog, default_catalog
from koda.tools.read import Read

ORDER = [
    "Read", "Write", "Edit", "Delete", "List", "Glob", "Grep", "Bash", "BashOutput", "BashStop",
    "WebFetch", "WebSearch", "MemoryRead", "MemoryWrite", "TodoWrite", "AskUser",
    "RecallContext", "ListSkills", "ActivateSkill",
]  # fmt: skip


def test_default_catalog_order() -> None:
    assert default_catalog().names() == ORDER


@pytest.mark.parametrize(("sent", "expected"), [
    ("Read", "Read"),
    ("read", "Read"),
    ("READ", "Read"),
    ("read_file", "Read"),
    (" Read_File ", "Read"),
    ("write_file", "Write"),
    ("edit_tool", "Edit"),
    ("list_files", "List"),
    ("list-files", "List"),
    ("glob", "Glob"),
    ("grep_tool", "Grep"),
    ("BASH", "Bash"),
    ("bash_tool", "Bash"),
])  # fmt: skip
def test_get_normalises_names(sent: str, expected: str) -> None:
    tool = default_catalog().get(sent)
    assert tool is not None
    assert tool.name == expected


@pytest.mark.parametrize("sent", ["", "reader", "shell", "remove_file", "file"])
def test_unknown_names_are_none(sent: str) -> None:
    assert default_catalog().get(sent) is None


def test_definitions_mirror_the_tools_in_order() -> None:
    catalog = default_catalog()
    definitions = catalog.definitions()
    assert all(isinstance(d, ToolDefinition) for d in definitions)
    assert [d.name for d in definitions] == ORDER
    for definition in definitions:
        tool = catalog.get(definition.name)
        assert tool is not None
        assert definition.description == tool.description
        assert definition.parameters == tool.parameters


def test_schemas_are_closed_objects_with_known_required_fields() -> None:
    for definition in default_catalog().definitions():
        schema = definition.parameters
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"])
        for prop in schema["properties"].values():
            assert prop["type"] in {"string", "integer", "boolean", "array"}
            assert prop["description"]


def test_definitions_are_small() -> None:
    # The whole first request must stay under 16 KB (benchmarks/bench_first_request.py).
    size = len(json.dumps([asdict(d) for d in default_catalog().definitions()]))
    assert size < 11_000


def test_parameters_are_not_shared_between_instances() -> None:
    first, second = Read(), Read()
    first.parameters["properties"]["path"]["description"] = "changed"
    assert second.parameters["properties"]["path"]["description"] != "changed"


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="share the name"):
        ToolCatalog([Read(), Read()])


def test_summaries_survive_garbage_arguments() -> None:
    catalog = default_catalog()
    for name in catalog.names():
        tool = catalog.get(name)
        assert tool is not None
        for args in ({}, {"path": 5, "pattern": None, "command": ["x"]}):
            line = tool.summary(args)
            assert line.startswith(name)
            assert "\n" not in line
