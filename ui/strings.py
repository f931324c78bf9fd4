"""Every word the chat shows, in Chinese (the default) and English, in one table."""

from __future__ import annotations

import re
from dataclasses import dataclass

ZH_CODE = "zh"
EN_CODE = "en"
_LANG_ITEM = re.compile(
    r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$"
)


@dataclass(frozen=True)
class Labels:
    """The words of a reply, in the question's language."""

    colon: str
    searched: str
    mode: str
    modes: dict[str, str]
    passages: str
    not_found: str
    weak: str
    weak_note: str
    answer: str
    related: str
    weakly: str
    fits: str
    unfit: str
    expand: str
    chars: str
    error: str
    also_in: str
    open_article: str
    good: str
    bad: str
    copy: str
    copied: str
    right_passage: str
    none_right: str
    thanks: str
    question: str
    sources: str


ZH = Labels(
    colon="：",
    searched="检索语句",
    mode="检索方式",
    modes={"hybrid": "混合", "dense": "向量", "lexical": "关键词"},
    passages="出处段落",
    not_found="资料中没有找到相关内容。",
    weak="低相关",
    weak_note="以下是最接近的几段，相关度低，仅供参考：",
    answer="答案",
    related="相关",
    weakly="弱相关",
    fits="含所问的信息类型",
    unfit="不含所问的信息类型",
    expand="展开全文",
    chars="字",
    error="出错了",
    also_in="同见于",
    open_article="阅读全文",
    good="回答正确",
    bad="回答有误",
    copy="复制",
    copied="已复制",
    right_passage="正确的段落是：",
    none_right="都不是（资料中没有答案）",
    thanks="谢谢，已记录。",
    question="问题",
    sources="出处",
)
EN = Labels(
    colon=": ",
    searched="Searched as",
    mode="Retrieval mode",
    modes={"hybrid": "hybrid", "dense": "dense (vectors)", "lexical": "lexical (keywords)"},
    passages="Sources",
    not_found="The articles do not contain this.",
    weak="weak match",
    weak_note="The closest passages, weakly related, for reference only:",
    answer="answer",
    related="related",
    weakly="weakly related",
    fits="holds the kind of information asked for",
    unfit="does not hold the kind of information asked for",
    expand="Show the whole passage",
    chars="characters",
    also_in="also in",
    error="Error",
    open_article="Read the article",
    good="Right answer",
    bad="Wrong answer",
    copy="Copy",
    copied="Copied",
    right_passage="The right passage was:",
    none_right="None (the articles do not answer)",
    thanks="Thank you, noted.",
    question="Question",
    sources="Sources",
)


def labels_for(english: bool) -> Labels:
    """The reply words for an English (True) or Chinese (False) question."""
    return EN if english else ZH


# The page's own words (layout, status line, notices), by language code.
UI: dict[str, dict[str, str]] = {
    ZH_CODE: {
        "title": "newsqa · 新闻问答",
        "intro": (
            "## 新闻问答 · 有出处的检索\n"
            "向文章库提问（中文或英文），每个回答都标明出自哪篇文章、哪几行；"
            "点击 [1] 或出处即可在旁边阅读全文。可以追问（如「那它的总投资呢？」），"
            "也可以上传新文章。"
        ),
        "placeholder": "输入问题，例如：七台河冰雪经济产业园研创中心项目的总建筑面积是多少？",
        "ask": "提问",
        "empty_hint": "请输入问题后再发送（问题不能为空）。",
        "examples": "示例问题（点击即问）",
        "settings": "设置",
        "k": "显示段落数",
        "mode": "检索方式",
        "mode_info": "混合：向量与关键词结果融合后重排（推荐）",
        "mode_hybrid": "混合",
        "mode_dense": "向量",
        "mode_lexical": "关键词",
        "new": "新对话",
        "upload_panel": "上传文章",
        "upload": "上传文章（.txt .md .html .docx .pdf .csv .jsonl .tsv）",
        "upload_note": (
            "纯文本（UTF-8 或 GBK/GB18030）、网页、Word、带文字层的 PDF，"
            "或每行一篇的表格（CSV/JSONL/TSV）；上传后立即可问。"
        ),
        "articles": "已索引的文章",
        "chat_placeholder": "在下方输入问题，或点击示例问题。",
        "history": "对话记录",
        "history_list": "保存在本浏览器中的对话",
        "rename": "重命名",
        "rename_placeholder": "当前对话的新名称",
        "delete": "删除当前对话",
        "export": "导出为 Markdown",
        "export_file": "导出的文件",
        "nothing_to_export": "这个对话还没有回答，先提一个问题吧。",
        "untitled": "新对话",
        "info": "提示",
        "warning": "注意",
        "adding": "正在加入文章……",
        "added": "已加入 {count} 个文件，现在就可以提问。",
        "added_file": "已加入 {name}：",
        "refused_file": "未能加入 {name}：{reason}",
        "no_title": "（无标题）",
        "status_error": "**无法打开索引**：{error}",
        "status_building": "首次启动，正在为文章建立索引（约需一两分钟）",
        "status_loading": "正在载入模型与索引",
        "status_progress": "，已处理 {done}/{total} 个文件",
        "status_eta": "，约剩 {eta} 秒",
        "status_wait": "**请稍候**：{what}{progress}…… 已用 {seconds:.0f} 秒",
        "status_ready": (
            "**已就绪**：{files} 个文件、{articles} 篇文章 · 默认检索方式「{mode}」"
            " · 用时 {seconds:.1f} 秒载入"
        ),
        "status_empty": " · 文库还是空的：上传文章（txt、md、html、pdf、docx、csv 等）即可提问",
        "status_skipped": "  \n**未收录**：{shown}{more}",
        "status_more": " 等 {count} 项",
        "pending": "索引仍在建立中，回答会在完成后出现，请稍候……",
        "close": "关闭",
        "open_page": "在新页面打开（可分享的链接）",
        "source_file": "来源文件",
        "date": "日期",
        "back": "返回问答",
        "not_found_title": "找不到这篇文章",
        "not_found": "文库中没有编号为 {id} 的文章（可能已被移除或重新索引）。",
        "loading": "正在载入……",
        "cited": "引用的段落",
    },
    EN_CODE: {
        "title": "newsqa · news Q&A",
        "intro": (
            "## News Q&A · answers with sources\n"
            "Ask the article library (in Chinese or English): every answer names the article "
            "and lines it comes from; click [1] or a source to read the whole article beside "
            "the chat. Follow-ups work (“and its total investment?”), and you can upload "
            "more articles."
        ),
        "placeholder": "Type a question, e.g. What is the total investment of the Jiulong "
        "pumped storage power station?",
        "ask": "Ask",
        "empty_hint": "Type a question before sending (the question is empty).",
        "examples": "Example questions (click to ask)",
        "settings": "Settings",
        "k": "Passages shown",
        "mode": "Retrieval mode",
        "mode_info": "Hybrid: vector and keyword results fused, then re-ranked (recommended)",
        "mode_hybrid": "hybrid",
        "mode_dense": "dense (vectors)",
        "mode_lexical": "lexical (keywords)",
        "new": "New conversation",
        "upload_panel": "Upload articles",
        "upload": "Upload articles (.txt .md .html .docx .pdf .csv .jsonl .tsv)",
        "upload_note": (
            "Plain text (UTF-8 or GBK/GB18030), web pages, Word, PDF with a text layer, or "
            "tables with one article per row (CSV/JSONL/TSV); ask at once after uploading."
        ),
        "articles": "Indexed articles",
        "chat_placeholder": "Type a question below, or click an example.",
        "history": "Conversations",
        "history_list": "Kept in this browser",
        "rename": "Rename",
        "rename_placeholder": "New name of this conversation",
        "delete": "Delete this conversation",
        "export": "Export as Markdown",
        "export_file": "Exported file",
        "nothing_to_export": "This conversation has no answer yet: ask a question first.",
        "untitled": "New conversation",
        "info": "Info",
        "warning": "Warning",
        "adding": "Adding the articles…",
        "added": "Added {count} file(s): ask away.",
        "added_file": "Added {name}: ",
        "refused_file": "Could not add {name}: {reason}",
        "no_title": "(no title)",
        "status_error": "**Cannot open the index**: {error}",
        "status_building": "first start, indexing the articles (a minute or two)",
        "status_loading": "loading the model and the index",
        "status_progress": ", {done}/{total} files done",
        "status_eta": ", about {eta} s left",
        "status_wait": "**Please wait**: {what}{progress}… {seconds:.0f} s so far",
        "status_ready": (
            "**Ready**: {files} files, {articles} articles · default retrieval mode “{mode}”"
            " · loaded in {seconds:.1f} s"
        ),
        "status_empty": " · the library is empty: upload articles (txt, md, html, pdf, docx, "
        "csv …) to ask",
        "status_skipped": "  \n**Not indexed**: {shown}{more}",
        "status_more": " and {count} more",
        "pending": "The index is still being built; the answer will follow, please wait…",
        "close": "Close",
        "open_page": "Open in a new page (a link to share)",
        "source_file": "Source file",
        "date": "Date",
        "back": "Back to the chat",
        "not_found_title": "Article not found",
        "not_found": "The library holds no article {id} (it may have been removed or re-indexed).",
        "loading": "Loading…",
        "cited": "cited passage",
    },
}


def text(key: str, lang: str = ZH_CODE, **values: object) -> str:
    """One of the page's words in ``lang`` (Chinese for any other code), filled in.

    Args:
        key: its name in :data:`UI`.
        lang: ``"zh"`` or ``"en"``.
        values: what its ``{placeholders}`` stand for.

    Returns:
        The text.
    """
    table = UI.get(lang, UI[ZH_CODE])
    return table[key].format(**values) if values else table[key]


def mode_name(mode: str, lang: str = ZH_CODE) -> str:
    """A retrieval mode as a reader knows it (「混合」, not ``hybrid``, on the Chinese page)."""
    key = f"mode_{mode}"
    return text(key, lang) if key in UI[ZH_CODE] else mode


def preferred_language(accept_language: str | None) -> str:
    """``"en"`` when a browser's ``Accept-Language`` prefers English to Chinese, else ``"zh"``.

    Args:
        accept_language: the header's value (None or "" when absent).

    Returns:
        The page language code: Chinese unless English ranks higher than any Chinese.
    """
    best: dict[str, float] = {}
    for position, item in enumerate((accept_language or "").split(",")):
        match = _LANG_ITEM.match(item)
        if not match:
            continue
        code = match.group(1).lower()
        try:
            weight = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        # equal weights: the earlier entry is the preferred one
        best.setdefault(code, weight - position * 1e-6)
    english, chinese = best.get(EN_CODE, -1.0), best.get(ZH_CODE, -1.0)
    return EN_CODE if english > chinese and english > 0 else ZH_CODE


# The library tab's words (ui/manager.py), as ``lib_<key>`` in the table above.
LIBRARY_TEXT: dict[str, dict[str, str]] = {
    ZH_CODE: {
        "tab": "文库",
        "chat_tab": "问答",
        "intro": (
            "### 文库管理\n"
            "文库中的每个文件：标题、日期、大小、段落数与索引时间。选中一个文件后可以移出文库、"
            "恢复、重新索引或下载原文。移出上传的文件会将其删除；其他文件保留在磁盘上，"
            "标为「已移出」，随时可以恢复。"
        ),
        "search": "按标题搜索",
        "search_placeholder": "输入标题中的词，例如：七台河",
        "pick": "选择文件",
        "remove": "移出文库",
        "restore": "恢复",
        "reindex": "重新索引所选文件",
        "reindex_all": "全部重新索引",
        "download": "下载原文",
        "upload": "上传文章（可多选）",
        "col_title": "标题",
        "col_date": "日期",
        "col_size": "大小",
        "col_chunks": "段落",
        "col_indexed": "索引时间",
        "col_state": "状态",
        "col_file": "文件",
        "more_titles": "等 {count} 篇",
        "no_title": "（无标题）",
        "unknown": "—",
        "state_indexed": "已收录",
        "state_uploaded": "已收录（上传）",
        "state_excluded": "已移出（文件仍在磁盘上）",
        "empty": "文库中还没有文章。",
        "no_match": "没有标题包含「{query}」的文章。",
        "shown": "显示 {shown} / {total} 个文件",
        "none_selected": "请先选择一个文件。",
        "deleted": "已删除上传的文件 {file}，其 {removed} 个段落已移出索引。",
        "excluded": (
            "已将 {file} 移出文库（{removed} 个段落已移出索引）；文件仍在磁盘上，可随时恢复。"
        ),
        "restored": "已恢复 {file}：{embedded} 个段落重新加入索引。",
        "reindexed": "已重新索引 {file}：{embedded} 个段落。",
        "reindexed_all": "已重新索引全部 {files} 个文件：{embedded} 个段落。",
        "failed": "操作未完成：{reason}",
        "detail": "{reason}（{detail}）",
        "bad_name": "文件名无效，只能指定文库文件夹中的文件",
        "unknown_file": "文库中没有这个文件",
        "library_refused": "文库无法完成这项更改",
        "status": (
            "**文库**：{files} 个文件、{chunks} 个段落已收录 · 其中上传 {uploaded} 个"
            " · 已移出 {excluded} 个 · 更新于 {time}"
        ),
        "status_waiting": "**文库**：索引尚未就绪，请稍候……",
        "status_error": "**文库**：无法打开索引：{error}",
        "upload_waiting": "等待中",
        "upload_running": "正在加入……",
        "upload_added": "已加入：{titles}",
        "upload_refused": "未能加入：{reason}",
        "upload_progress": "正在加入 {name}（{n}/{total}）",
        "upload_done": "上传完成：加入 {added} 个，未能加入 {failed} 个。",
        "title_join": "、",
    },
    EN_CODE: {
        "tab": "Library",
        "chat_tab": "Ask",
        "intro": (
            "### The library\n"
            "Every file of the library: title, date, size, passages and when it was indexed. "
            "Select a file to remove it from the library, restore it, re-index it or download "
            "the original. Removing an uploaded file deletes it; any other file stays on disk, "
            "marked “excluded”, and can be restored at any time."
        ),
        "search": "Search by title",
        "search_placeholder": "Words of a title, e.g. 七台河",
        "pick": "Select a file",
        "remove": "Remove from the library",
        "restore": "Restore",
        "reindex": "Re-index the selected file",
        "reindex_all": "Re-index all",
        "download": "Download the original",
        "upload": "Upload articles (several at once)",
        "col_title": "Title",
        "col_date": "Date",
        "col_size": "Size",
        "col_chunks": "Passages",
        "col_indexed": "Indexed",
        "col_state": "State",
        "col_file": "File",
        "more_titles": "({count} articles)",
        "no_title": "(no title)",
        "unknown": "—",
        "state_indexed": "indexed",
        "state_uploaded": "indexed (uploaded)",
        "state_excluded": "excluded (still on disk)",
        "empty": "The library holds no articles yet.",
        "no_match": "No article title holds “{query}”.",
        "shown": "{shown} of {total} files shown",
        "none_selected": "Select a file first.",
        "deleted": "Deleted the uploaded file {file}; its {removed} passages left the index.",
        "excluded": (
            "Removed {file} from the library ({removed} passages left the index); the file "
            "stays on disk and can be restored."
        ),
        "restored": "Restored {file}: {embedded} passages are back in the index.",
        "reindexed": "Re-indexed {file}: {embedded} passages.",
        "reindexed_all": "Re-indexed all {files} files: {embedded} passages.",
        "failed": "Not done: {reason}",
        "detail": "{reason} ({detail})",
        "bad_name": "not the name of a file in the library folder",
        "unknown_file": "no such file in the library",
        "library_refused": "the library cannot make this change",
        "status": (
            "**Library**: {files} files, {chunks} passages indexed · {uploaded} uploaded"
            " · {excluded} excluded · as of {time}"
        ),
        "status_waiting": "**Library**: the index is not ready yet, please wait…",
        "status_error": "**Library**: cannot open the index: {error}",
        "upload_waiting": "waiting",
        "upload_running": "adding…",
        "upload_added": "added: {titles}",
        "upload_refused": "not added: {reason}",
        "upload_progress": "Adding {name} ({n}/{total})",
        "upload_done": "Upload finished: {added} added, {failed} not added.",
        "title_join": ", ",
    },
}
for _code, _words in LIBRARY_TEXT.items():
    UI[_code].update({f"lib_{key}": value for key, value in _words.items()})
