"""Building the JSON Schema of a tool's arguments, so each tool states only what differs."""

from __future__ import annotations

from typing import Any

FILE_PATH = "File path, relative to the project root."


def arguments(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema; a new dict per call, so no two tools share (and mutate) one."""
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def integer(description: str) -> dict[str, Any]:
    return {"type": "integer", "description": description}


def boolean(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}
