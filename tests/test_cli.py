"""The newsqa command line, driven through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(
        "# 哈尔滨冰雪大世界开园\n\n本报讯（记者甲）哈尔滨冰雪大世界12月18日开园，园区占地面积100万平方米。\n",
        encoding="utf-8",
    )
    return corpus


def test_index_then_ask_json(folder: Path, tmp_path: Path, with_model: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["index", str(folder), "--index-dir", str(tmp_path / "ix")])
    assert result.exit_code == 0, result.output
    assert "1 files" in result.output and "added: a.txt" in result.output
    result = runner.invoke(
        main,
        [
            "ask",
            "冰雪大世界占地多大？",
            "--json",
            "-k",
            "1",
            "--folder",
            str(folder),
            "--index-dir",
            str(tmp_path / "ix"),
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    [hit] = answer["hits"]
    assert answer["found"] is True and answer["citation"] == "a.txt:3"
    assert hit["citation"]["file"] == "a.txt" and hit["citation"]["ref"] == "a.txt:3"
    assert "100万平方米" in hit["sentence"] == answer["sentence"]


def test_ask_prints_citation_and_marks_the_sentence(folder: Path, with_model: Path) -> None:
    result = CliRunner().invoke(main, ["ask", "冰雪大世界占地多大？", "--folder", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Answer: ") and "[a.txt:3]" in result.output.splitlines()[0]
    assert "[1]" in result.output and "a.txt:3" in result.output and "【" in result.output


def test_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ask", "   ", "--folder", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error:") and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["index", str(tmp_path / "missing")])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_an_index_report_of_many_files_names_the_first_ones_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(25):
        (folder / f"{n:02d}.txt").write_text(f"第{n}篇报道：松花江畔的冰雕。\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["index", str(folder), "--embedder", "hash"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.strip().startswith("added:"))
    assert "00.txt" in line and "19.txt" in line and "20.txt" not in line
    assert line.endswith("… and 5 more")


@pytest.mark.parametrize(
    ("option", "value", "wrong", "named"),
    [
        ("--runtime", "onnx", "gpu", "onnx-int8"),
        ("--sentence-vectors", "pooled", "both", "separate"),
    ],
)
def test_embedding_options_are_recorded_in_the_index(
    tmp_path: Path, option: str, value: str, wrong: str, named: str
) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "a.txt").write_text("松花江畔的冰雕今天开始展出。\n", encoding="utf-8")
    index = tmp_path / "index"
    args = ["index", str(folder), "--embedder", "hash", "--index-dir", str(index)]
    result = CliRunner().invoke(main, [*args, option, value])
    assert result.exit_code == 0, result.output
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"][option[2:].replace("-", "_")] == value
    bad = CliRunner().invoke(main, [*args, option, wrong])
    assert bad.exit_code != 0 and named in bad.output
