"""The newsqa web chat (Gradio): cited answers, follow-ups and uploads in the browser."""

from __future__ import annotations

__all__ = ["build_app", "launch"]


def __getattr__(name: str) -> object:
    """Import the Gradio app only when it is used (Gradio is slow to import)."""
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
