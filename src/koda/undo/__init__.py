"""Undo that really undoes: checkpoints of the project's files in a shadow git repository."""

from koda.undo.checkpoints import (
    Checkpoint,
    Checkpoints,
    NothingToUndoError,
    UndoError,
    UndoResult,
)

__all__ = ["Checkpoint", "Checkpoints", "NothingToUndoError", "UndoError", "UndoResult"]
