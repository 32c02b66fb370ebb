"""JSON form shared by events and commands: a dataclass plus a snake_case `type` tag."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="Tagged")


class Tagged:
    """Base for event and command dataclasses; subclasses set TYPE."""

    TYPE: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {"type": self.TYPE, **body}


def registry(*classes: type[T]) -> dict[str, type[T]]:
    return {cls.TYPE: cls for cls in classes}


def decode(table: dict[str, type[T]], data: Any, what: str) -> T:
    """Build the dataclass named by `data["type"]`; ValueError on anything malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ValueError(f"{what} must be a JSON object with a string 'type'")
    cls = table.get(data["type"])
    if cls is None:
        raise ValueError(f"unknown {what} type: {data['type']!r}")
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: v for k, v in data.items() if k in fields}
    hook = getattr(cls, "decode_fields", None)
    if hook is not None:
        kwargs = hook(kwargs)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"malformed {what} {data['type']!r}: {exc}") from None
