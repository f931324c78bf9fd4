"""Ranking: query normalisation, fusion, the second stage and the answering sentence."""

from __future__ import annotations

from helpers import make_chunk

from rag.calibration import Calibration, default_calibration
from rag.ranking import (
    Candidate,
    QueryTerms,
    fuse,
    is_cross_lingual,
    lead_of,
    mark_sentences,
    rerank,
)
from rag.text import sentence_spans

CALIBRATION = default_calibration()


def test_sentence_spans_keep_end_punctuation_and_closing_quotes() -> None:
    text = "他说：“项目投产了。”  总投资10亿元！还有呢"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == ["他说：“项目投产了。”", "总投资10亿元！", "还有呢"]


def test_fusion_rewards_chunks_both_searches_found() -> None:
    a, b, c = (
        make_chunk(id="a", text="甲"),
        make_chunk(id="b", text="乙"),
        make_chunk(id="c", text="丙"),
    )
    fused = fuse([(a, 0.9), (b, 0.8)], [(b, 7.0), (c, 5.0)])
    assert [x.chunk.id for x in fused] == ["b", "a", "c"]
    assert fused[0].dense == 0.8 and fused[0].lexical == 7.0


def test_quantity_questions_prefer_the_sentence_stating_a_quantity() -> None:
    terms = QueryTerms.of("老兵驿站设有几个功能区？")
    assert terms.wants_quantity
    assert terms.answers_quantity("老兵驿站设有展览区、会客区等六个功能区。")
    assert not terms.answers_quantity("近日，七台河市首家老兵驿站揭牌。")


def test_second_stage_lifts_the_chunk_whose_sentence_answers() -> None:
    terms = QueryTerms.of("研创中心项目的总建筑面积是多少？")
    topic = make_chunk(id="topic", text="研创中心项目正在加紧建设。工人们已开始进行室内装修。")
    answer = make_chunk(id="answer", text="该项目总投资1000万元，总建筑面积2800平方米。")
    candidates = fuse([(topic, 0.91), (answer, 0.90)], [(topic, 9.0), (answer, 8.0)])
    mark_sentences(candidates, terms)
    for c, cosines in zip(candidates, ([0.85, 0.80], [0.92]), strict=True):
        c.sentence_cosines = cosines
    assert [c.chunk.id for c in rerank(candidates, terms, CALIBRATION)][0] == "answer"


def test_best_sentence_is_the_closest_in_meaning_nudged_by_literal_evidence() -> None:
    c = Candidate(make_chunk(id="x", text="冰雪季临近，项目加紧建设。该项目总建筑面积2800平方米。"))
    mark_sentences([c], QueryTerms.of("总建筑面积是多少？"))
    c.sentence_cosines = [0.88, 0.87]
    c.literal_weight = CALIBRATION.sentence_literal
    assert c.chunk.text[slice(*c.best_span)] == "该项目总建筑面积2800平方米。"


def test_cross_lingual_questions_are_recognised() -> None:
    assert is_cross_lingual("How many wind turbine sites did Wudalianchi select?")
    assert not is_cross_lingual("五大连池选了多少个风机点位？")
    assert not is_cross_lingual("GDP增长了多少？")


def test_a_measure_word_asks_for_a_number_with_that_unit() -> None:
    terms = QueryTerms.of("七台河援助湖北孝感医疗队有多少名队员？")
    assert terms.fits("七台河市援助湖北孝感医疗队的12名医疗队队员平安凯旋。")
    assert not terms.fits("医疗队队员董志厚瘦了16斤。")
    assert QueryTerms.of("共有多少人参加？").fits("5000名以上的技术人员")  # 人 ~ 名
    assert QueryTerms.of("他有几个孩子？").fits("已婚，育有3名子女。")  # 个: any measure word
    assert QueryTerms.of("每年能加工多少万吨粮食？").fits("年加工粮食110万吨。")
    # 哪几座 asks for names, not a count
    assert QueryTerms.of("达曼的卫星城有哪几座？").fits("卫星城有Khobar、札哈兰以及Qatif。")


def test_an_english_how_many_needs_a_number_with_the_unit_its_noun_names() -> None:
    days = QueryTerms.of("How many days did the Qitaihe medical team fight in Hubei?")
    assert days.fits("在湖北忘我奋战的39天里，队员们没有一个人退缩。")
    assert not days.fits("21日下午，医疗队圆满完成了一个多月的援助任务。")  # 21日 is a date
    assert days.fits("常规审批缩短了10个工作日。")
    money = QueryTerms.of("How much has the Lianshun project invested over three years?")
    assert money.fits("3年来累计完成投资77亿元。")
    assert not money.fits("将为5000名以上的技术人员提供就业岗位。")
    assert QueryTerms.of("How old is Guan Chengliang?").fits("43岁的关成亮已在寒风中忙碌。")
    assert QueryTerms.of("How many old people live in the community?").unit == "名人位"
    assert QueryTerms.of("How many pairs will it make?").fits("产量有望突破3万双。")
    sites = QueryTerms.of("How many wind turbine sites did Wudalianchi select?")
    assert sites.fits("选取了 614个风机点位。")  # no known noun: any measure word
    assert not sites.fits("项目整体完成35%。")
    assert QueryTerms.of("How much did GDP grow, in percent?").fits("增长了35%。")


def test_an_english_question_matches_the_pinyin_of_names() -> None:
    terms = QueryTerms.of("How many wind turbine sites did Wudalianchi select?")
    answer = "五大连池市委、市政府选取了 614个风机点位，规划风力发电总装机容量3837.5MW。"
    assert terms.overlap(answer) > terms.overlap("仅今年上半年就与 30多家企业签订了协议。") == 0
    assert QueryTerms.of("Where did Zhang Ruijia go?").overlap("张瑞佳来到了医院。") > 0


def test_a_count_is_not_answered_by_an_amount_or_a_year() -> None:
    projects = QueryTerms.of("绥芬河市2021年以来签约了多少个项目？")
    assert projects.fits("共签约项目45个。") and projects.fits("引进3家企业。")
    assert not projects.fits("总投资11.87亿元。") and not projects.fits("2023年开工。")
    sites = QueryTerms.of("How many wind turbine sites did Wudalianchi select?")
    assert not sites.fits("总投资11.87亿元的200MW风电项目正在进行风机施工；")


def test_time_words_counted_with_ge_answer_their_unit() -> None:
    months = QueryTerms.of("援助任务持续了多少月？")
    assert months.fits("完成了一个多月的援助任务。") and months.fits("历时3个月。")
    assert not QueryTerms.of("有多少名老年居民？").fits("这是一个人口重度老龄化的社区。")


def test_which_school_and_where_need_a_place_of_that_kind() -> None:
    school = QueryTerms.of("Which school's students took part in the forest study trip in Hegang?")
    assert school.fits("鹤岗市第十三中学的学生们走进森林研学。")
    assert not school.fits("研学导师为学生们讲解森林食物链。")
    hospital = QueryTerms.of("张瑞佳在哪家医院做的残疾鉴定？")
    assert hospital.fits("他在黑龙江海员总医院做了残疾鉴定。")
    assert not hospital.fits("他去医院做了鉴定。")  # the question's own word names no hospital
    body = QueryTerms.of("Which Qitaihe government body signed the agreement?")
    assert body.fits("七台河市体育局与昆士兰州冰上速滑协会签署长期战略合作协议；")
    where = QueryTerms.of("绥芬河中式面点职业技能竞赛在哪里举办？")
    assert where.fits("绥芬河市人社局在黑龙江金成职业技能培训学校联合举办竞赛。")
    assert not where.fits("绥芬河的选手们按照指定品种进行制作。")  # only the question's place
    assert QueryTerms.of("七台河市首家老兵驿站位于哪里？").fits("该驿站位于勃利服务区。")


def test_a_how_much_question_needs_its_attribute_named() -> None:
    terms = QueryTerms.of("联顺绿色生物医药产业项目的总投资是多少？")
    assert terms.attribute == "总投资"
    assert terms.fits("该项目总投资120亿元。")
    assert not terms.fits("联顺项目3年来累计完成投资77亿元。")  # a part, not the total
    assert QueryTerms.of("勃利县凯润生物质发电项目总投资是多少？").attribute == "总投资"
    # other attributes count when half their bigrams are named (人口数 by 人口)
    assert QueryTerms.of("2008年吉斯伯恩大区的人口数是多少？").fits("人口约33,700人（2008年）。")
    assert not QueryTerms.of("九龙抽水蓄能电站建成后的装机容量是多少？").fits(
        "总投资68亿元的九龙抽水蓄能电站项目完成核准。"
    )


def test_when_and_who_questions_need_a_date_and_a_person() -> None:
    when = QueryTerms.of("中广核五大连池和平200MW风电项目预计什么时候并网发电？")
    assert when.fits("项目预计今年10月并网发电。") and when.fits("于二十世纪初期写成。")
    assert not when.fits("总投资11.87亿元的风电项目正在进行风机施工；")
    who = QueryTerms.of("七台河市残联“业务能手”评比中获得个人一等奖的是谁？")
    assert who.fits("勃利县残联的王英娣获得个人一等奖。")
    assert not who.fits("三区一县残联共4支代表队参赛。")
    assert QueryTerms.of("这个项目的意义是什么？").asks_form is False  # no form asked: all fit


def test_the_best_sentence_is_one_that_holds_the_asked_number() -> None:
    terms = QueryTerms.of("医疗队有多少名队员？")
    text = "医疗队队员董志厚瘦了16斤。医疗队的12名队员平安凯旋。"
    candidate = Candidate(make_chunk(id="c", text=text))
    mark_sentences([candidate], terms)
    a, b = candidate.best_span
    assert "12名" in text[a:b] and candidate.best_fits and candidate.fits


def test_a_sum_without_yuan_answers_a_money_question() -> None:
    terms = QueryTerms.of("那套二手房一共花了多少钱？")
    assert terms.fits("93平米的2居总价180万。")
    assert terms.fits("以400万的投资取得近3000万票房")
    assert not terms.fits("小区共有500万人次到访。")  # a count, not a sum
    assert not terms.fits("这套房子位于朝阳路。")


def test_a_predicate_or_time_before_the_question_word_is_no_attribute() -> None:
    # 投了/死时/一年 are not attributes the answering sentence must name
    assert QueryTerms.of("在搭桥计划上总共投了多少钱？").attribute == ""
    assert QueryTerms.of("船员死时多少岁？").attribute == ""
    assert QueryTerms.of("项目的总投资是多少？").attribute == "总投资"


def test_the_noun_after_how_much_is_the_attribute_asked_for() -> None:
    salary = QueryTerms.of("任志强一年能拿多少薪水？")
    assert salary.attribute == "薪水"
    assert salary.fits("任志强的年薪高达700多万元。")  # 薪 names the salary
    box_office = QueryTerms.of("电影《如梦》最后拿下了多少票房？")
    assert not box_office.fits("由吴彦祖和袁泉主演的电影《如梦》已经开拍，投资1500万。")
    assert box_office.fits("《如梦》首周票房达到2000万。")


def test_more_measure_words_say_what_number_answers() -> None:
    votes = QueryTerms.of("崔世安在选举中得了多少票？")
    assert votes.fits("崔世安以282票当选。") and not votes.fits(
        "崔世安于12日宣布参选，3时步入会场。"
    )
    assert QueryTerms.of("她写了多少首歌？").fits("她写了30首歌。")
    assert QueryTerms.of("电影最后拿下了多少票房？").unit == ""  # 票房 is the thing asked, not 票


def _answer(question: str, sentence: str) -> str | None:
    span = QueryTerms.of(question).answer_span(sentence)
    return None if span is None else sentence[span[0] : span[1]]


def test_the_answer_span_is_the_number_with_the_asked_unit() -> None:
    assert _answer("选取了多少个风机点位？", "五大连池市共选取了614个风机点位。") == "614个"
    assert _answer("项目总投资多少钱？", "该项目总投资9亿元，年产值12亿元。") == "9亿元"
    assert _answer("他花了多少钱？", "以总价180万的价格购入。") == "180万"  # 元 left out
    assert _answer("项目的总投资是多少？", "项目于2023年开工，总投资12.5亿元。") == "12.5亿元"
    # a unit's first character stands for the whole measure word, which the span keeps
    assert _answer("总建筑面积是多少平方米？", "总建筑面积2800平方米，年内建成。") == "2800平方米"
    assert _answer("保护区有多少平方公里？", "保护区面积达1.2万平方公里。") == "1.2万平方公里"


def test_the_answer_span_is_the_date_the_name_or_the_place_asked_for() -> None:
    assert _answer("项目什么时候开工？", "项目于2023年3月5日正式开工。") == "2023年3月5日"
    assert _answer("谁带领医疗队？", "医疗队由王小明带领出发。") == "王小明"
    assert _answer("他在哪所学校读书？", "他毕业于哈尔滨市第十三中学。") == "第十三中学"


def test_no_answer_span_without_an_asked_form_or_when_folding_moves_offsets() -> None:
    assert _answer("项目有什么意义？", "项目于2023年开工，总投资9亿元。") is None
    assert _answer("谁带领医疗队？", "医疗队今天出发。") is None  # no name: nothing fits
    assert _answer("共有多少个？", "共有６１４个。") == "６１４个"  # offsets into the original
    assert _answer("共有多少个？", "㈠共有614个。") is None  # NFKC lengthens ㈠: no wrong span


def test_a_number_written_in_digits_is_preferred_to_a_numeral_inside_a_word() -> None:
    sentence = "按照统一部署，七台河市签约项目141个。"
    assert _answer("签约了多少个项目？", sentence) == "141个"


LEAD = "新浪娱乐讯 由吴彦祖和袁泉主演的电影《如梦》已经开拍。本片是一个浪漫的爱情故事。两人首次一同跳舞。"


def test_words_the_lead_lacks_point_to_the_sentence_with_the_detail() -> None:
    terms = QueryTerms.of("吴彦祖和袁泉主演的电影《如梦》投资多少？")
    lead = lead_of(LEAD)
    assert lead == "新浪娱乐讯 由吴彦祖和袁泉主演的电影《如梦》已经开拍。本片是一个浪漫的爱情故事。"
    assert terms.beyond_lead(lead, "如梦开拍") == {"》投", "投资"}
    # a question whose words the lead holds all of points nowhere beyond it
    asked = QueryTerms.of("《如梦》的主演是谁？")
    assert asked.beyond_lead("《如梦》的主演是谁？是吴彦祖。", "") == set()
    # English questions share no bigrams with Chinese text
    assert QueryTerms.of("How much did Ru Meng cost?").beyond_lead(lead, "") == set()
    # the passage's sentence holding those words is its answering sentence
    passage = make_chunk(
        text="《如梦》在台北开拍。电影《如梦》投资高达1500万人民币。两人练舞多时。"
    )
    [candidate] = fuse([(passage, 0.9)], [])
    candidate.lead = lead
    mark_sentences([candidate], terms)
    assert candidate.sentence_details == [0.0, 1.0, 0.0]
    assert candidate.best_sentence == 1


def test_the_detail_feature_lifts_the_passage_past_the_lead_that_names_everyone() -> None:
    terms = QueryTerms.of("吴彦祖和袁泉主演的电影《如梦》投资多少？")
    lead = make_chunk(id="lead", text=LEAD)
    detail = make_chunk(id="detail", text="电影《如梦》投资高达1500万人民币，请到知名摄影师。")
    candidates = fuse([(lead, 0.90), (detail, 0.89)], [(lead, 9.0), (detail, 8.0)])
    for c in candidates:
        c.lead = lead_of(LEAD)
    mark_sentences(candidates, terms)
    for c in candidates:
        c.sentence_cosines = [0.86] * len(c.spans)
    without = CALIBRATION.to_dict()
    without["weights"]["detail"] = 0.0
    before = rerank(candidates, terms, Calibration.from_dict(without))
    assert before[0].chunk.id == "lead"
    assert rerank(candidates, terms, CALIBRATION)[0].chunk.id == "detail"
