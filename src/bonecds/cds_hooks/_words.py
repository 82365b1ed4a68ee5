"""What bonecds writes on a card besides the report's own texts, in each report language.

The report brings its clinical texts in the language asked for (labels, rationales, cautions,
reasons, doses); these are the card's frame around them. Field paths, rule ids, option ids and
units stay as they are in both languages: they are what the reader looks up. The agents' Chinese
names are the knowledge base's own (`label_zh` of their options in rules/vocabulary.yaml).
"""

from __future__ import annotations

__all__ = ["AGENT_NAMES", "STATES", "WORDS"]

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "source": "bonecds (research prototype, not a medical device)",
        "emergency": "Emergency: {label}",
        "order": "{agent} order",
        "rule": "{text} (rule `{rule}`)",
        "head": "{head}: {text}",
        "remove_action": "Remove the draft order",
        "remove": "Remove this {agent_lower} order",
        "dose_summary": "{agent} {ordered} mg ordered; {dose}",
        "dose_body": "Ordered: {ordered} mg. Recommended: {dose}.",
        "dose_action": "Set the dose to {amount} mg",
        "dose_label": "Change the dose to {amount} mg",
        "bma": "Bone-modifying agents",
        "dose": " Dose: {dose}.",
        "conditional": " Conditional on: {fields}.",
        "option_line": "{rank}. **{label}** ({strength}). {rationale}{dose}{conditional}",
        "context_line": "- Context: **{label}**: {rationale}",
        "note_line": "- Note: {text}",
        "options": "Bone-health options, best first: {names}",
        "before_signing": "Before signing {agent_lower}",
        "missing": "Missing data",
        "request_line": "`{field}`: {reason} (decides: {gates})",
        "unchecked_text": (
            "bonecds proposes no {agent_lower} for this patient from the recorded data (no "
            "bone-metastasis or other indication found), so its safety checks did not run. Check "
            "the indication and the missing-data card."
        ),
        "unchecked": "{agent} order not checked: no indication found in the record",
        "data": "Data bonecds used and could not use for this patient",
        "values": "**Patient values used**",
        "rules": "**Rules**: ",
        "sources": "**Sources**",
        "notice": "_bonecds is a research prototype, not a medical device: check every card._",
        "unknown": "unknown",
        "yes": "yes",
        "no": "no",
        "none": "none",
        "dated": " (data of {date})",
        "resources": " ({count} resources)",
        "mapping": "Mapping: {note}",
        "draft": "Draft order: {problem}",
        "list": ", ",
        "colon": ": ",
    },
    "zh": {
        "source": "bonecds（研究原型，不是医疗器械）",
        "emergency": "急症：{label}",
        "order": "{agent}医嘱",
        "rule": "{text}（规则 `{rule}`）",
        "head": "{head}：{text}",
        "remove_action": "删除该医嘱草稿",
        "remove": "删除此{agent_lower}医嘱",
        "dose_summary": "{agent}医嘱剂量 {ordered} mg；{dose}",
        "dose_body": "医嘱剂量：{ordered} mg。推荐：{dose}。",
        "dose_action": "将剂量设为 {amount} mg",
        "dose_label": "将剂量改为 {amount} mg",
        "bma": "骨改良药物",
        "dose": "剂量：{dose}。",
        "conditional": "待定，取决于：{fields}。",
        # No evidence grade: the knowledge base writes grades in English only, and the Chinese
        # reports leave them out too.
        "option_line": "{rank}. **{label}**。{rationale}{dose}{conditional}",
        "context_line": "- 全身治疗背景：**{label}**：{rationale}",
        "note_line": "- 备注：{text}",
        "options": "骨健康处理方案（按优先级）：{names}",
        "before_signing": "签署{agent_lower}医嘱前",
        "missing": "缺少数据",
        "request_line": "`{field}`：{reason}（决定：{gates}）",
        "unchecked_text": (
            "根据记录的数据，bonecds 未对该患者提出{agent_lower}（未发现骨转移或其他适应证），"
            "因此未执行其安全性检查。请核对适应证及缺少数据卡片。"
        ),
        "unchecked": "{agent}医嘱未检查：记录中未发现适应证",
        "data": "bonecds 对该患者已使用及无法使用的数据",
        "values": "**所用患者数值**",
        "rules": "**规则**：",
        "sources": "**参考来源**",
        "notice": "_bonecds 是研究原型，不是医疗器械：请核对每张卡片。_",
        "unknown": "未知",
        "yes": "是",
        "no": "否",
        "none": "无",
        "dated": "（数据日期 {date}）",
        "resources": "（{count} 个资源）",
        "mapping": "映射：{note}",
        "draft": "医嘱草稿：{problem}",
        "list": "、",
        "colon": "：",
    },
}

AGENT_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "zoledronic_acid": "Zoledronic acid",
        "denosumab": "Denosumab",
        "pamidronate": "Pamidronate",
        "ibandronate": "Ibandronic acid",
    },
    "zh": {
        "zoledronic_acid": "唑来膦酸",
        "denosumab": "地舒单抗",
        "pamidronate": "帕米膦酸",
        "ibandronate": "伊班膦酸",
    },
}

# A prefetch key's state, for the data card (checklist ).
STATES: dict[str, dict[str, str]] = {
    "en": {
        "data": "supplied by the EHR",
        "fetched": "fetched from the FHIR server",
        "null": "the EHR reported no data (null)",
        "empty": "the EHR searched and found none (empty Bundle)",
        "absent": "not supplied and not fetched: treated as unknown",
        "error": "the EHR reported an error (OperationOutcome): treated as unknown",
        "partial": "only a first page was supplied: treated as unknown",
    },
    "zh": {
        "data": "由 EHR 提供",
        "fetched": "从 FHIR 服务器获取",
        "null": "EHR 报告无数据（null）",
        "empty": "EHR 已检索但未找到（空 Bundle）",
        "absent": "未提供也未获取：按未知处理",
        "error": "EHR 报告错误（OperationOutcome）：按未知处理",
        "partial": "仅提供了第一页：按未知处理",
    },
}
