"""The words the renderers put around the report's own texts, in each report language.

Rule texts arrive translated in the Report (knowledge/i18n.py); everything the renderers add
(headings, labels, status words, value words, the computed-value methods) lives here, so that
a `zh` report carries no English of ours.
"""

from __future__ import annotations

import re

__all__ = ["METHODS_ZH", "condition_words", "method_words", "targets_words", "words"]

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "report": "bonecds report",
        "patient": "patient",
        "unnamed": "unnamed patient",
        "as_of": "as of",
        "knowledge": "knowledge",
        "notice": "NOTICE",
        "what_now": "WHAT NOW",
        "details": "DETAILS",
        "emergencies": "Emergencies",
        "no_emergency": "no emergency identified by the rules",
        "options": "Options, best first",
        "no_option": "no bone-directed option proposed",
        "contraindicated_short": "Contraindicated (reasons below)",
        "contra_badge": "CONTRAINDICATED",
        "missing": "Data still needed, and what each would decide",
        "no_missing": "no data still needed",
        "emergency": "EMERGENCY",
        "score": "score",
        "status": "status",
        "dose": "dose",
        "caution": "caution",
        "more": "more",
        "decides": "decides",
        "urgent": "URGENT",
        "ranked": "Emergencies and management options, ranked",
        "contraindicated": "Contraindicated (kept visible, with the reason)",
        "cautions": "Cautions",
        "requests": "Data still needed to decide",
        "context": "Systemic-therapy context",
        "notes": "Notes",
        "derived": "Values bonecds computed",
        "sources": "Sources",
        "rationale": "Rationale",
        "why_fired": "Why each rule fired (conditions with the patient's values)",
        "applies_to": "applies to",
        "rules": "rules",
        "cites": "sources",
        "same_sources": "same sources as",
        "patient_values": "patient values",
        "inputs": "inputs",
        "method": "method",
        "patient_value": "patient",
        "conditional": "conditional on",
        "complete": "no data pending",
        "met": "met",
        "not met": "not met",
        "unknown": "unknown",
        "yes": "yes",
        "no": "no",
        "none": "none",
        "option": "option",
        "reason": "reason",
        "basis": "Basis for independent review",
        "basis_text": (
            "This page shows the patient data bonecds read, the logic each rule applied in plain "
            "words, and the published sources behind it, so that a clinician can check every "
            "option independently rather than rely on it."
        ),
        "inputs_used": "Patient data the rules read",
        "logic": "The logic, rule by rule",
        "needs": "needs",
        "patient_target": "patient",
        "outcome_ranked": "ranked",
        "outcome_contraindicated": "contraindicated",
        "outcome_not_proposed": "not proposed",
        "contraindicated_by": "contraindicated by",
        "no_rule": "no rule proposes this option",
        "fired": "fired",
    },
    "zh": {
        "report": "bonecds 报告",
        "patient": "患者",
        "unnamed": "未命名患者",
        "as_of": "评估日期",
        "knowledge": "知识库",
        "notice": "声明",
        "what_now": "当前要点",
        "details": "详细信息",
        "emergencies": "急症",
        "no_emergency": "规则未识别出急症",
        "options": "处理方案（按优先级）",
        "no_option": "未提出针对骨的处理方案",
        "contraindicated_short": "禁忌（原因见下文）",
        "contra_badge": "禁忌",
        "missing": "仍需的数据及其决定的内容",
        "no_missing": "无仍需的数据",
        "emergency": "急症",
        "score": "评分",
        "status": "状态",
        "dose": "剂量",
        "caution": "注意",
        "more": "更多",
        "decides": "决定",
        "urgent": "紧急",
        "ranked": "急症与处理方案（按优先级排序）",
        "contraindicated": "禁忌（保留显示并附原因）",
        "cautions": "注意事项",
        "requests": "决策仍需的数据",
        "context": "全身治疗背景",
        "notes": "备注",
        "derived": "bonecds 计算的数值",
        "sources": "参考来源",
        "rationale": "依据",
        "why_fired": "各规则触发的原因（条件及患者数值）",
        "applies_to": "适用于",
        "rules": "规则",
        "cites": "来源",
        "same_sources": "来源同",
        "patient_values": "患者数值",
        "inputs": "输入",
        "method": "方法",
        "patient_value": "患者",
        "conditional": "待定，取决于",
        "complete": "无待补数据",
        "met": "满足",
        "not met": "不满足",
        "unknown": "未知",
        "yes": "是",
        "no": "否",
        "none": "无",
        "option": "方案",
        "reason": "原因",
        "basis": "供独立核查的依据",
        "basis_text": (
            "本页列出 bonecds 读取的患者数据、各规则以通俗语言表述的逻辑及其所依据的已发表来源，"
            "以便临床医生独立核查每个方案，而不是依赖本系统。"
        ),
        "inputs_used": "规则读取的患者数据",
        "logic": "逐条规则的逻辑",
        "needs": "需要",
        "patient_target": "患者",
        "outcome_ranked": "已提出并排序",
        "outcome_contraindicated": "禁忌",
        "outcome_not_proposed": "未提出",
        "contraindicated_by": "禁忌，依据规则",
        "no_rule": "没有规则提出此方案",
        "fired": "已触发",
    },
}

# The methods engine/facts.py names for its computed values, as the report carries them (English).
METHODS_ZH = {
    "as reported": "按报告值",
    "serum creatinine now minus at the start of the current bone-modifying agent": (
        "当前血肌酐减去开始当前骨改良药物时的血肌酐"
    ),
    "computed (Cockcroft-Gault: (140 - age) x weight / (72 x SCr), x 0.85 if female)": (
        "计算值（Cockcroft-Gault 公式：(140 - 年龄) × 体重 / (72 × 血肌酐)，女性 × 0.85）"
    ),
    "albumin-corrected (Payne: Ca + 0.8 x (4.0 - albumin g/dL))": (
        "白蛋白校正（Payne 公式：总钙 + 0.8 × (4.0 - 白蛋白 g/dL)）"
    ),
    "reporting laboratory": "报告实验室的参考范围",
    "default (laboratory range not supplied)": "默认值（未提供实验室参考范围）",
    "sum of the metastases counted by site (at least this many in all)": (
        "按部位计数的转移灶之和（总数至少为此值）"
    ),
}


def words(language: str) -> dict[str, str]:
    return WORDS.get(language, WORDS["en"])


def method_words(method: str, language: str) -> str:
    """A computed value's method in the report language (unknown methods stay as written)."""
    return METHODS_ZH.get(method, method) if language == "zh" else method


# The plain-word grammar of report/explain.py's condition lines, in Chinese (field paths, ids and
# values stay as they are: they are what the reader looks up).
_CONDITIONS_ZH = [
    (re.compile(r"^all of:$"), "以下全部满足："),
    (re.compile(r"^any of:$"), "以下至少满足一项："),
    (re.compile(r"^not:$"), "以下不成立："),
    (re.compile(r"^option (\S+) is proposed for (.+)$"), r"已提出方案 \1（用途：\2）"),
    (re.compile(r"^option (\S+) is proposed$"), r"已提出方案 \1"),
    (re.compile(r"^(\S+) holds$"), r"\1 成立"),
    (re.compile(r"^(\S+) is known$"), r"\1 已知"),
    (re.compile(r"^(\S+) is unknown$"), r"\1 未知"),
    (re.compile(r"^(\S+) is true$"), r"\1 为是"),
    (re.compile(r"^(\S+) is false$"), r"\1 为否"),
    (re.compile(r"^(\S+) is one of (.+)$"), r"\1 属于 \2"),
    (re.compile(r"^(\S+) is none of (.+)$"), r"\1 不属于 \2"),
    (re.compile(r"^(\S+) does not include (.+)$"), r"\1 不包含 \2"),
    (re.compile(r"^(\S+) includes (.+)$"), r"\1 包含 \2"),
    (re.compile(r"^(\S+) is not true$"), r"\1 不为是"),
    (re.compile(r"^(\S+) is not false$"), r"\1 不为否"),
    (re.compile(r"^(\S+) is not (.+)$"), r"\1 不是 \2"),
    (re.compile(r"^(\S+) is (.+)$"), r"\1 为 \2"),
]


def targets_words(targets: list[str], language: str) -> str:
    """What a caution applies to: option ids as they are, the patient as a whole in words."""
    w = words(language)
    return ", ".join(w["patient_target"] if t == "patient" else t for t in targets)


def condition_words(text: str, language: str) -> str:
    """A traced condition's text in the report language (comparisons keep their symbols)."""
    if language != "zh":
        return text
    for pattern, replacement in _CONDITIONS_ZH:
        if pattern.match(text):
            return pattern.sub(replacement, text)
    return text
