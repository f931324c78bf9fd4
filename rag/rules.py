"""The question rules, as data: what a question asks for, and how a follow-up points back.

One place for the tables the second stage and the follow-up resolver read: question
words, measure words and the units they answer, dates, persons, kinds of place, the
words before a question word that are no attribute; and the pronouns, demonstratives
and connectives by which a follow-up refers to the previous question.
"""

from __future__ import annotations

import re

# ------------------------------------------------------------ what a question asks for

NUMBER = re.compile(r"\d+(?:\.\d+)?")
# A quantity as the articles write it: digits, or Chinese numerals before a measure word.
QUANTITY = re.compile(  # (?!河): 七台河 is a city, not "seven units"
    r"\d|[一二两三四五六七八九十百千万亿几]+[个名项家台座条种次位人户所处辆架批元吨米倍成](?!河)"
)
QUANTITY_QUESTION = re.compile(
    r"多少|几|多大|多长|多高|多重|多远|how (?:many|much|long|large|big)", re.I
)
# Question words carry no evidence; dropping them keeps them out of the overlap score.
QUESTION_WORDS = re.compile(
    r"是多少|多少|什么|哪些|哪个|哪里|哪|怎么|如何|为什么|吗|呢|请问|是否|几|谁|[？?。，,！!\s]"
)
# "X的Y是多少": Y is what is asked (总建筑面积, 设计产能); the sentence naming it is
# the answer, while X (the topic) is often named only in an earlier sentence.
# An aggregate named without 的 (项目总投资是多少) is asked about just the same.
FOCUS = re.compile(
    r"(?:的|(?=总))([\u4e00-\u9fff]{2,8}?)(?:是|有|为|达到|达|能达到)?"
    r"(?:多少|几|什么|哪|怎样|如何|何时|多大|多长|多高|多远)"
)
# Words before a question word that are no attribute: a predicate (投了), a time
# clause (死时) or a time or number (一年, 今年).
NOT_AN_ATTRIBUTE = re.compile(
    r"[了过着时]$|^(?:[一二两三四五六七八九十\d]+|[今去明每本上下])[年月天日周期]$"
)
ASKED_NOUN = re.compile(r"(?:多少|几)([\u4e00-\u9fff]{2,4})")
MONEY_UNIT = "元钱块美港欧镑"
# "多少名/几个/多少万吨": the measure word after the question word says what kind of
# number answers; words in one group answer alike (a question's 人 by the article's 名).
UNIT_GROUPS = ("名人位", "个项家户所", MONEY_UNIT, "平", "吨", "件", "米", "斤",
               "亩", "台", "座", "条", "种", "次", "辆", "架", "批", "处", "天", "年",
               "月", "岁", "倍", "层", "栋", "间", "张", "只", "头", "部", "份", "届",
               "期", "场", "篇", "双", "票", "套", "首", "枚", "艘", "棵", "株", "匹",
               "款", "集", "册", "轮", "宗", "例", "笔", "帧", "局")  # fmt: skip
# A measure word's single character stands for the words it starts: the answer span of
# 多少平方米 is the whole 2800平方米, not 2800平.
UNIT_WORD_TAIL = re.compile(r"(?<=平)(?:方公里|方千米|方米|米)|(?<=[公千])(?:里|米|克|斤|顷)")
GENERIC_UNIT = "个项家户所"  # 几个 is answered by any word that counts things (3名子女)
# ... but not by an amount or a time: 多少个项目 is not answered by 11.87亿元 or 2023年.
AMOUNT_WORDS = "元钱块美港欧镑平吨米斤亩天年月岁"
COUNT_WORDS = "".join(c for c in "".join(UNIT_GROUPS) if c not in AMOUNT_WORDS)
# 哪几座/哪几个 ask for names, not a number.
UNIT_QUESTION = re.compile(r"(?<!哪)(?:多少|几)[万亿千百]*(?!票房)([\u4e00-\u9fff])")
NUMERAL = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千万亿几]+)(?:[万亿千百]|余|多)*"
# Time words counted with 个 between: 3个月, 一个多月, 两个小时, 10个工作日.
COUNTED_TIME = {"月": "个[多半]?月", "时": "个[多半]?小时", "天": "个?工作日"}
# News often leaves 元 out of a sum: 总价180万, 以400万的投资 answer 花了多少钱.
BARE_AMOUNT = re.compile(rf"{NUMERAL}[万亿](?![{''.join(UNIT_GROUPS)}])")
# An English "how many/much" question says its unit with a noun; the first one after
# "how" picks the measure words that answer it ("" for percentages: no measure word).
ENGLISH_UNITS = (
    (
        r"people|persons?|members?|staff|workers?|employees?|doctors?|nurses?|volunteers?"
        r"|individuals?|students?|residents?|athletes?|teachers?|officers?|talents?"
        r"|tourists?|visitors?|passengers?|patients?|children|farmers?|villagers?",
        "名人位",
    ),
    (r"yuan|money|invest\w*|costs?|funds?|funding|spen[dt]|revenue|price|profit", MONEY_UNIT),
    (r"weight|kilograms?|kg|jin", "斤克"),
    (r"tons?|tonnes?", "吨"),
    (r"square (?:met(?:er|re)s?|kilomet(?:er|re)s?)|sq", "平"),
    (r"kilomet(?:er|re)s?|met(?:er|re)s?|km", "米"),
    (r"mu", "亩"),
    (r"days?", "天"),
    (r"months?", "月"),
    (r"years?", "年"),
    (r"hours?", "时"),
    (r"pairs?", "双"),
    (r"cases?", "件起"),
    (r"times", "次倍"),
    (r"percent\w*|per cent|%", ""),
)
ENGLISH_UNIT = re.compile(
    r"\b(?:" + "|".join(f"({pattern})" for pattern, _ in ENGLISH_UNITS) + r")\b", re.I
)
HOW_MANY = re.compile(r"\bhow (many|much|old)\b", re.I)
# "哪天/什么时候/何时": answered by a sentence that states a date or time.
DATE_QUESTION = re.compile(
    r"哪天|哪一天|什么时候|何时|哪年|哪一年|几月|几号|几点|什么时间|哪个月|when", re.I
)
DATE = re.compile(
    r"\d+\s*(?:年|月|日|号|时|点)|[一二三四五六七八九十]+(?:月|日)|今年|去年|明年|年底|年初|年内|月底|月初"
    r"|上旬|中旬|下旬|春节|国庆|元旦|\b(?:19|20)\d\d\b"
    # eras, ages and times of day answer "when" as well (二十世纪初期, 十八岁, 早上)
    r"|世纪|年代|时期|时候|岁|季|早上|晚上|上午|下午|中午|凌晨|夜|周|星期|之后|以后"
)
# "谁/哪位/who" is answered by a sentence naming a person.
PERSON_QUESTION = re.compile(r"谁|哪位|何人|\bwho(?:m|se)?\b", re.I)
# "哪所学校/which hospital" is answered by a sentence naming a place or body of that kind
# (a word ending in one of its endings: 中学, 总医院, 体育局); "哪里/where" by any place
# or body. Rows: the kind as a Chinese question says it, as an English one does, endings.
PLACE_KINDS = (
    ("学校", r"schools?", "学校|中学|小学|大学|学院"),
    ("医院", r"hospitals?", "医院"),
    ("公司|企业", r"compan(?:y|ies)|firms?|enterprises?", "公司|企业|集团|厂"),
    ("银行", r"banks?", "银行"),
    (
        "部门|单位|机构",
        r"bod(?:y|ies)|departments?|bureaus?|agenc(?:y|ies)|authorit(?:y|ies)",
        "局|委|厅|部|办|中心|政府|委员会|协会|联合会",
    ),
    ("县", r"count(?:y|ies)", "县"),
    ("村", r"villages?", "村"),
)
ANY_PLACE = "|".join(endings for _, _, endings in PLACE_KINDS) + (
    "|省|市|区|州|镇|乡|街|路|馆|站|港|园|场|楼|山|湖|岛"  # where: 勃利服务区, 体育馆
)
WHERE_QUESTION = re.compile(r"哪里|哪儿|什么地方|何处|何地|\bwhere\b", re.I)
# jieba part-of-speech tags: person names; place and organisation names.
PERSON_TAGS = frozenset({"nr", "nrt", "nrfg"})
NAME_TAGS = frozenset({"ns", "nt"})
# Words jieba tags as places that name no particular one.
GENERIC_PLACES = frozenset(
    ["城市", "全国", "全省", "全市", "全县", "国内", "国外", "海外", "境内", "境外", "地区", "当地",
     "本地", "农村", "城乡", "乡村", "省内", "市内", "县城", "中外", "各地", "外地", "城区", "市区",
     "基层", "社区"]
)  # fmt: skip
# Words between the attribute and the question word that are not the attribute.
FILLER_WORDS = frozenset(
    ["大约", "大概", "一共", "共", "约", "总共", "预计", "能", "可", "可以", "将", "会", "到", "了",
     "到了", "达", "已", "已经", "目前", "分别", "各"]
)  # fmt: skip


# ------------------------------------------------------------ follow-up questions

END_PUNCT = "？?。.！!，,；;：:…~～ \t\r\n"

# Question words, optionally led by a copula, as they appear in Chinese questions.
ZH_QUESTION = re.compile(
    r"(?:是|有|为|在|约|达|共|一共|总共)?"
    r"(?:多少|什么时候|什么|几[个家年月日天次项]?|多大|多高|多长|多久|多远|哪些|哪个|哪家|哪里|哪儿"
    r"|哪|何时|何地|何处|为什么|为何|怎么样|怎样|怎么|如何|谁|是否|吗)"
)
# A tail that is nothing but question words ("是多少", "有哪些"): safe to reuse after an ellipsis.
ZH_PURE_TAIL = re.compile(
    r"^(?:是|有|为|在|约|达|共|一共|总共)?"
    r"(?:多少|什么|几|多大|多高|多长|多久|多远|哪些|哪个|哪家|哪里|哪儿|如何|怎么样|怎样)"
    r"(?:钱|元|人|个|家|项|年|平方米|亩|吨)?$"
)
# Where a named subject usually ends: "…项目", "…公司", "…市".
ZH_ENTITY_END = re.compile(
    r".*(?:项目|工程|公司|集团|企业|中心|产业园|园区|基地|电站|医院|学校|大学|协会|驿站|热线"
    r"|小程序|矿|厂|站|局|委|政府|市|县|区|镇|乡|村|省)"
)
# Attributes whose question words differ from the previous question's ("…的开工时间是什么时候").
ZH_ATTRIBUTE_TAILS = (
    (("时间", "日期", "时候"), "是什么时候"),
    (("地点", "位置", "地址", "地方"), "在哪里"),
    (("原因",), "是什么"),
)
ZH_CONNECTIVES = {"那", "那么", "那末", "还有", "另外", "此外", "以及", "而", "又", "再"}
ZH_PERSONAL = {"它", "它们", "其", "他们", "她们"}
ZH_DEMONSTRATIVES = {
    "该",
    "此",
    "这",
    "那",
    "本",
    "这个",
    "那个",
    "这座",
    "那座",
    "这家",
    "那家",
    "这项",
    "那项",
    "这些",
    "那些",
    "这一",
    "那一",
}
# Generic nouns a demonstrative points with: "该项目", "这座城市".
ZH_GENERIC_NOUNS = {
    "项目",
    "工程",
    "公司",
    "企业",
    "集团",
    "中心",
    "园区",
    "产业园",
    "基地",
    "城市",
    "市",
    "县",
    "区",
    "地",
    "地方",
    "单位",
    "部门",
    "活动",
    "计划",
    "政策",
    "工作",
    "电站",
    "医院",
    "学校",
}

EN_WH = re.compile(
    r"^(?:what|which|who|whom|whose|when|where|why|how(?:\s+(?:many|much|long|big|large|far))?)\b\s*",
    re.IGNORECASE,
)
EN_AUX = re.compile(
    r"^(?:is|are|was|were|do|does|did|will|would|has|have|had|can|could|should)\b\s*", re.IGNORECASE
)
EN_LEAD = re.compile(
    r"^(?:(?:and|so|also|then|but)\b[\s,]*)?(?:(?:what|how)\s+about|what\s+of)?\b\s*", re.IGNORECASE
)
EN_STARTS_FOLLOW_UP = re.compile(
    r"^(?:(?:and|so|also|then|but)\b|(?:what|how)\s+about\b|what\s+of\b)", re.IGNORECASE
)
EN_PRONOUN = re.compile(r"\b(it|its|they|their|them|this one|that one)\b", re.IGNORECASE)
# Where the predicate starts after "When did <subject> …": cut there to keep the subject.
EN_PREDICATE = re.compile(
    r"\s+\b(?:get|gets|got|start|starts|started|begin|begins|began|open|opens|opened|finish"
    r"|finished|complete|completed|cost|costs|create|created|produce|produced|reach|reached"
    r"|invest|invested|employ|employs|become|became|sign|signed|hold|held|launch|launched"
    r"|plan|planned|need|needs|take|takes|took|make|makes|made|be|been|being)\b",
    re.IGNORECASE,
)
EN_POSSESSIVE_LEAD = re.compile(r"^(?:its|their|the|it's)\s+", re.IGNORECASE)
