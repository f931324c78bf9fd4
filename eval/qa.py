"""Q&A sets: the JSONL format of eval/qa_seeds.jsonl, and SQuAD-format files such as CMRC 2018."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag import cache_dir

REQUIRED = ("id", "question", "answer", "doc", "evidence", "type")


@dataclass(frozen=True)
class Fact:
    """One piece of evidence: in file ``doc``, any one of ``texts`` supports it."""

    doc: str
    texts: tuple[str, ...]


@dataclass(frozen=True)
class QAPair:
    """A question with the facts that answer it (none when the corpus cannot)."""

    id: str
    question: str
    answers: tuple[str, ...]
    facts: tuple[Fact, ...]
    type: str

    @property
    def answerable(self) -> bool:
        return bool(self.facts)


def normalise(text: str) -> str:
    """Width-, case- and whitespace-insensitive form used by every comparison."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def load_jsonl(path: Path) -> list[QAPair]:
    """Read a Q&A file in this project's JSONL format.

    Args:
        path: one JSON object per line with ``id``, ``question``, ``answer``, ``doc``,
            ``evidence``, ``type`` and optionally ``doc2``/``evidence2``.

    Returns:
        The pairs, in file order.

    Raises:
        ValueError: a line is not valid JSON or lacks a field (with its line number).
    """
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        missing = [key for key in REQUIRED if key not in item]
        if missing:
            raise ValueError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        facts = []
        for doc_key, evidence_key in (("doc", "evidence"), ("doc2", "evidence2")):
            if item.get(evidence_key):
                doc = item.get(doc_key) or item["doc"]
                facts.append(Fact(doc, (item[evidence_key],)))
        answer = item["answer"]
        pairs.append(
            QAPair(
                id=str(item["id"]),
                question=item["question"],
                answers=(answer,) if answer else (),
                facts=tuple(facts),
                type=item["type"],
            )
        )
    return pairs


def load_squad(path: Path, corpus_dir: Path) -> list[QAPair]:
    """Turn a SQuAD-format file into a corpus folder and Q&A pairs.

    Every paragraph becomes one document ``<paragraph id>.txt`` (its article title as
    a heading); a question is answered by a chunk of its paragraph that contains one of
    its answer texts.

    Args:
        path: the SQuAD-format JSON file (e.g. CMRC 2018).
        corpus_dir: where to write the documents (created; existing files reused).

    Returns:
        The pairs (entries with an empty question are left out).
    """
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    corpus_dir.mkdir(parents=True, exist_ok=True)
    pairs = []
    for article in data:
        for position, paragraph in enumerate(article["paragraphs"]):
            doc_id = paragraph.get("id") or f"{article.get('id', 'doc')}_{position}"
            doc = f"{doc_id}.txt"
            text = f"# {article.get('title', doc_id)}\n\n{paragraph['context'].strip()}\n"
            target = corpus_dir / doc
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                target.write_text(text, encoding="utf-8")
            for qa in paragraph["qas"]:
                if not qa["question"].strip():
                    continue  # a few CMRC entries have no question text
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"] if a["text"]))
                pairs.append(
                    QAPair(
                        id=str(qa["id"]),
                        question=qa["question"],
                        answers=answers,
                        facts=(Fact(doc, answers),) if answers else (),
                        type="squad",
                    )
                )
    return pairs


# THUCNews categories, as ASCII so the file names stay portable.
TSV_CATEGORIES = {
    "体育": "sports",
    "娱乐": "entertainment",
    "家居": "home",
    "房产": "realestate",
    "教育": "education",
    "时尚": "fashion",
    "时政": "politics",
    "游戏": "games",
    "科技": "tech",
    "财经": "finance",
}


def tsv_file_name(number: int, category: str) -> str:
    """``news_017_sports.txt``: the file the ``number``-th line (from 0) of a TSV becomes."""
    return f"news_{number:03d}_{TSV_CATEGORIES.get(category, 'other')}.txt"


def split_tsv(path: Path, corpus_dir: Path) -> list[Path]:
    """Write each ``category<TAB>text`` line of ``path`` as one article file.

    The text is written as it stands (one long line, the headline run into the body),
    the layout the product must cope with.

    Args:
        path: the TSV file, e.g. ``news-dev.tsv``.
        corpus_dir: where to write the files (created; unchanged files are not rewritten).

    Returns:
        The article files, in line order.

    Raises:
        ValueError: a line without a tab (with its line number).
    """
    corpus_dir.mkdir(parents=True, exist_ok=True)
    written = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(line for line in lines if line.strip()):
        category, tab, text = line.partition("\t")
        if not tab:
            raise ValueError(f"{path}: article {number + 1} has no tab after its category")
        target = corpus_dir / tsv_file_name(number, category.strip())
        content = text.strip() + "\n"
        if not target.exists() or target.read_text(encoding="utf-8") != content:
            target.write_text(content, encoding="utf-8")
        written.append(target)
    return written


def cached_squad(path: Path) -> tuple[Path, list[QAPair]]:
    """A SQuAD-format file's paragraphs as documents under the cache, and its pairs."""
    folder = squad_corpus_dir(path, cache_dir() / "benchmarks")
    return folder, load_squad(path, folder)


def cached_tsv_corpus(path: Path) -> Path:
    """A ``category<TAB>text`` file split into article files under the cache (the folder)."""
    folder = squad_corpus_dir(path, cache_dir() / "benchmarks")
    split_tsv(path, folder)
    return folder


# Where the evidence-removed copy cuts a text document: after any sentence end or line.
SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")
TEXT_SUFFIXES = (".txt", ".md")


def remove_evidence(pairs: list[QAPair], corpus_dir: Path, target_dir: Path) -> list[QAPair]:
    """Copy the corpus with every sentence that holds a question's evidence cut out.

    Each answerable question then asks about articles that still name what it names
    but no longer state its answer: the tempting kind of unanswerable question, made
    from every answerable one. Only ``.txt``/``.md`` documents are cut; other files are
    copied as they are. The corpus folder itself is only read.

    Args:
        pairs: the Q&A set.
        corpus_dir: its corpus folder.
        target_dir: where the copy goes (created; files already right are kept).

    Returns:
        The answerable questions none of whose documents still hold one of their
        answers (an answer the article repeats elsewhere keeps its question out), as
        unanswerable pairs (no facts) of type ``evidence_removed``.
    """
    needles: dict[str, set[str]] = {}
    for pair in pairs:
        for fact in pair.facts:
            needles.setdefault(fact.doc, set()).update(
                normalise(t) for t in fact.texts if normalise(t)
            )
    cut: dict[str, str] = {}
    for source in sorted(p for p in corpus_dir.rglob("*") if p.is_file()):
        name = source.relative_to(corpus_dir).as_posix()
        target = target_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in needles and source.suffix.lower() in TEXT_SUFFIXES:
            cut[name] = _cut_sentences(source.read_text(encoding="utf-8"), needles[name])
            content = cut[name].encode("utf-8")
        else:
            content = source.read_bytes()
        if not target.exists() or target.read_bytes() != content:
            target.write_bytes(content)
    removed = []
    for pair in pairs:
        docs = [cut.get(fact.doc) for fact in pair.facts]
        answers = [normalise(a) for a in pair.answers if normalise(a)]
        if not pair.answerable or not answers or any(d is None for d in docs):
            continue
        if not any(a in normalise(d or "") for a in answers for d in docs):
            removed.append(QAPair(pair.id, pair.question, pair.answers, (), "evidence_removed"))
    return removed


def _cut_sentences(text: str, needles: set[str]) -> str:
    """``text`` without the sentences that hold a needle or lie inside one."""

    def states(sentence: str) -> bool:
        norm = normalise(sentence)
        return bool(norm) and any(n in norm or (len(norm) >= 6 and norm in n) for n in needles)

    return "".join(s for s in SENTENCE_END.split(text) if not states(s))


def cached_evidence_removed(pairs: list[QAPair], corpus_dir: Path) -> tuple[Path, list[QAPair]]:
    """:func:`remove_evidence` into a folder under the cache named by the corpus and set."""
    digest = hashlib.sha1()
    for pair in pairs:
        digest.update(repr((pair.id, pair.answers, pair.facts)).encode("utf-8"))
    for source in sorted(p for p in corpus_dir.rglob("*") if p.is_file()):
        digest.update(source.relative_to(corpus_dir).as_posix().encode("utf-8"))
        digest.update(source.read_bytes())
    folder = (
        cache_dir() / "benchmarks" / f"{corpus_dir.name}-evidence-removed-{digest.hexdigest()[:10]}"
    )
    return folder, remove_evidence(pairs, corpus_dir, folder)


def squad_corpus_dir(path: Path, root: Path) -> Path:
    """A stable folder under ``root`` for the documents of a SQuAD or TSV file."""
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:10]
    return root / f"{path.stem}-{digest}"
