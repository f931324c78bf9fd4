"""Typed exceptions raised by the library; the CLI and UI turn them into messages."""

from __future__ import annotations


class RagError(Exception):
    """Base class of every error this library raises on purpose."""


class CorpusError(RagError):
    """A corpus folder or file cannot be used (missing, empty, unreadable)."""


class UnreadableFileError(CorpusError):
    """A file is binary or in an encoding we cannot decode."""


class IndexCorruptError(RagError):
    """An index folder exists but its files are damaged or inconsistent."""


class ModelError(RagError):
    """The embedding model cannot be built or loaded."""


class QuestionError(RagError, ValueError):
    """The question is empty or otherwise unusable."""


class InvalidArgumentError(RagError, ValueError):
    """A setting or argument is out of range or of the wrong type (k, mode, chunk size)."""


class IndexFolderError(RagError):
    """The index folder cannot be used without touching files newsqa did not write there."""


class LibraryError(RagError):
    """A change to the article library cannot be made (the file is excluded already, the
    library's record cannot be written, ...)."""


class UnknownArticleError(LibraryError):
    """A file named by a user is not in the library (neither indexed nor excluded)."""


class UnsafePathError(LibraryError, ValueError):
    """A file name from a user leads outside the article folder (``..``, an absolute
    path, a symbolic link out) or is no usable name at all."""
