"""``python -m eval QA_FILE``: the eval script."""

from __future__ import annotations

from .cli import eval_command

if __name__ == "__main__":
    eval_command()
