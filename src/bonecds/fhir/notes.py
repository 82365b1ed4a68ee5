"""The FHIR mapping notes (what an input held that was not used, and why) in each report language.

The reader (`bonecds.fhir.read`) records a note as a template key and its arguments; the text is
written where the report language is known (the CLI, the audit record). Arguments are resource
names, element paths, codes and the input's own texts, shown as they are; a slot marked `:t`
holds one of our own words (TERMS), translated like the template around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from string import Formatter
from typing import NamedTuple

from bonecds.fhir.codes import (
    CONDITION_NOTES,
    KARNOFSKY_CITATION,
    NOT_USED_LOINC,
    UNMAPPED_LAB_LOINC,
)

__all__ = [
    "SEPARATORS",
    "TEMPLATES",
    "TERMS",
    "MappingNote",
    "in_english_order",
    "note",
    "one_line",
    "render_note",
]

_Value = str | tuple[str, ...]  # a text, or a list slot's texts


class MappingNote(NamedTuple):
    """One note: its template's key and the values of its slots. A named tuple (immutable,
    hashable) rather than a frozen dataclass: a Synthea record makes hundreds, and a tuple is
    built several times faster."""

    key: str
    args: tuple[tuple[str, _Value], ...] = ()


def note(key: str, **args: object) -> MappingNote:
    """A note; each value shown as an f-string shows it, on one line (a tuple is a list slot:
    its items joined in the report language)."""
    return MappingNote(key, tuple([(name, _value(value)) for name, value in args.items()]))


def _value(value: object) -> _Value:
    if value.__class__ is str:  # nearly every value: the test that needs no conversion first
        return value if value.isprintable() else one_line(value)
    if isinstance(value, tuple):
        return tuple(one_line(f"{item}") for item in value)
    return one_line(f"{value}")


def one_line(text: str) -> str:
    """Control characters escaped: input texts and validator messages stay on one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


# The reasons behind LOINC codes noted rather than mapped (codes.py), keyed by the code.
_UNUSED_LOINC = {**NOT_USED_LOINC, **UNMAPPED_LAB_LOINC}
_UNUSED_LOINC_ZH = {
    **dict.fromkeys(
        ("33914-3", "62238-1", "98979-8", "98980-6"), "eGFR 不是 Cockcroft-Gault 公式计算的 CrCl"
    ),
    "29265-6": "不使用实验室报告的校正血钙；使用总钙和白蛋白",
    "38483-4": "全血肌酐（Synthea）：不是血清或血浆肌酐；不据此推算 CrCl",
    "49765-1": "全血钙（Synthea）：不是血清总钙",
}
# Condition concepts noted with a reason rather than mapped (codes.py), keyed by the concept.
_CONDITION_NOTES_ZH = {
    "neoplasm-unspecified": "性质未指明的肿瘤：不据此设定 primary.site",
    "in-situ": "原位癌，非浸润性：不据此设定 primary.site",
    "suspected": "疑似诊断：未使用",
}
_KARNOFSKY_CITATION_ZH = (
    "Prasad KT 等，World J Clin Oncol 2018;9(7):140-7，doi:10.5306/wjco.v9.i7.140"
    "（KPS 100、80-90、70、50-60、10-40 分别对应 ECOG 0-4；5,844 对配对评估的一致率为 78.1%）"
)

_EN = {
    "next-page-unread": "Bundle: a next page was not read: the medication list is not complete",
    "entry-without-resource": (
        "Bundle.entry[{position}]: a {method} request without a resource: not used"
    ),
    "response-without-resource": (
        "Bundle.entry[{position}]: a response ({status}) without a resource: not used"
    ),
    "bad-date": "{name}: {path}: not a FHIR date or dateTime; not used",
    "bad-number": "{name}: {path}.value: not a finite number; not used",
    "bad-shape": "{name}: unexpected shape ({error}); not used",
    "subject-unresolved": "{name}: subject: reference not resolved to a Patient; not used",
    "no-medicine": "{name}: no medicationCodeableConcept or medicationReference; not used",
    "gender-other": "Patient.gender is neither male nor female: sex left unknown",
    "birth-date-partial": "Patient.birthDate is a partial date: age left unknown",
    "condition-refuted": "{name}: verificationStatus {status}; not used",
    "bone-metastasis-inactive": "{name}: bone metastasis with clinicalStatus {status}; not used",
    "metastasis-elsewhere": ("{name}: metastasis outside bone ({places:t}): lesion count unknown"),
    "secondary-without-site": "{name}: secondary cancer without a body site: bone unknown",
    "cancer-unspecified": "{name}: cancer of unspecified type: primary.site not set from it",
    **{
        f"condition-{concept}": f"{{name}} ({{text}}): {_escaped(reason)}"
        for concept, reason in CONDITION_NOTES.items()
    },
    "not-used": "{name} ({text}): not used",
    "histology-from-text": "{name}: histology read from its SNOMED text",
    "observation-not-final": "{name}: status {status} or a dataAbsentReason; not used",
    "observation-without-status": "{name}: status None or a dataAbsentReason; not used",
    "superseded": "{name}: superseded by a later one",
    **{
        f"loinc-{code}": f"{{name}}: LOINC {code} not used: {_escaped(reason)}"
        for code, reason in _UNUSED_LOINC.items()
    },
    "medicine-from-display": (
        "{name}: medicationReference not resolved; read from its display text"
    ),
    "medicine-unknown": "{name}: medicationReference not resolved; medicine unknown",
    "stopped-bma": "{name}: a stopped {agent}: previous_bma.agent only",
    "medicine-not-current": "{name}: status {status}: not a current medicine",
    "medicine-without-status": "{name}: status None: not a current medicine",
    "procedure-not-used": "{name} ({text}): procedure not used",
    "radiotherapy-without-site": "{name}: radiotherapy course without a site; not used",
    "types-unread": "resource types not read: {types}",
    "value-refused": "{path}: {message:t}; value not used",
    "lung-subtype-unknown": "lung cancer without a coded subtype: primary.site unknown",
    "primaries-several": "several primary cancers coded: primary.site unknown",
    "histologies-several": "several histologies coded: primary histology unknown",
    "medicines-unrecognised": ("medicines not recognised as a BMA or listed risk factor: {names}"),
    "medicines-incomplete": (
        "medication list incomplete (a medicine could not be read): "
        "other bone-modifying agents may be missing"
    ),
    "latest-unusable": "{concept:t}: the latest result is unusable; left unknown",
    "ecog-unreadable": "{name}: ECOG value not 0-4 or not readable; not used",
    "karnofsky-beside-ecog": "{name}: Karnofsky score not used: an ECOG score is recorded",
    "ecog-from-karnofsky": (
        f"ecog: computed from the Karnofsky score ({{name}}); {_escaped(KARNOFSKY_CITATION)}"
    ),
    "karnofsky-unreadable": "{name}: Karnofsky score not 10-100 or not readable; not used",
    "disease-status-unused": "{name}: cancer disease status '{status:t}': not used",
    "stage-from-text": "{name}: TNM stage group read from its text",
    "stage-unreadable": "{name}: TNM stage group not readable; not used",
    "value-not-number": "{name}: {path}.value: not a number; not used",
    "unit-without-system": (
        "{name}: {path}.code: unit without a UCUM system and code is not accepted for LOINC "
        "{code} (use {units}); value not used"
    ),
    "unit-without-code": (
        "{name}: {path}.code: unit without a UCUM code is not accepted for LOINC {code} "
        "(use {units}); value not used"
    ),
    "unit-refused": (
        "{name}: {path}.code: unit '{unit}' is not accepted for LOINC {code} (use {units}); "
        "value not used"
    ),
    "variant-unused": "{name}: variant ({genes}): not used",
    "variant-without-gene": "{name}: variant (no gene coded): not used",
    "receptor-unreadable": "{name}: {path} result not readable; not used",
}

# Simplified Chinese, in the words of the Chinese rule texts (骨改良药物, 骨转移). FHIR element
# names, resource types and code systems stay Latin: they are what the reader looks up in the
# record. Chinese punctuation throughout, also right after a Latin name.
_ZH = {
    "next-page-unread": "Bundle：未读取下一页：用药清单不完整",
    "entry-without-resource": "Bundle.entry[{position}]：不含资源的 {method} 请求：未使用",
    "response-without-resource": "Bundle.entry[{position}]：不含资源的响应（{status}）：未使用",
    "bad-date": "{name}：{path}：不是有效的 FHIR 日期或日期时间；未使用",
    "bad-number": "{name}：{path}.value：不是有限数值；未使用",
    "bad-shape": "{name}：结构异常（{error}）；未使用",
    "subject-unresolved": "{name}：subject：引用无法解析到 Patient；未使用",
    "no-medicine": "{name}：缺少 medicationCodeableConcept 和 medicationReference；未使用",
    "gender-other": "Patient.gender 既不是 male 也不是 female：性别记为未知",
    "birth-date-partial": "Patient.birthDate 为不完整日期：年龄记为未知",
    "condition-refuted": "{name}：verificationStatus 为 {status}；未使用",
    "bone-metastasis-inactive": "{name}：clinicalStatus 为 {status} 的骨转移；未使用",
    "metastasis-elsewhere": "{name}：骨外转移（{places:t}）：转移灶数目未知",
    "secondary-without-site": "{name}：继发性恶性肿瘤未注明身体部位：是否累及骨未知",
    "cancer-unspecified": "{name}：未指明类型的癌症：不据此设定 primary.site",
    **{
        f"condition-{concept}": f"{{name}}（{{text}}）：{reason}"
        for concept, reason in _CONDITION_NOTES_ZH.items()
    },
    "not-used": "{name}（{text}）：未使用",
    "histology-from-text": "{name}：组织学类型取自其 SNOMED 文本",
    "observation-not-final": "{name}：状态为 {status} 或带有 dataAbsentReason；未使用",
    "observation-without-status": "{name}：无状态或带有 dataAbsentReason；未使用",
    "superseded": "{name}：已被更新的结果取代",
    **{
        f"loinc-{code}": f"{{name}}：未使用 LOINC {code}：{reason}"
        for code, reason in _UNUSED_LOINC_ZH.items()
    },
    "medicine-from-display": "{name}：medicationReference 无法解析；药物按其显示文本识别",
    "medicine-unknown": "{name}：medicationReference 无法解析；药物不明",
    "stopped-bma": "{name}：已停用的 {agent}：仅记入 meds.previous_bma.agent",
    "medicine-not-current": "{name}：状态为 {status}：不是当前用药",
    "medicine-without-status": "{name}：无状态：不是当前用药",
    "procedure-not-used": "{name}（{text}）：该操作记录未使用",
    "radiotherapy-without-site": "{name}：放疗疗程未注明部位；未使用",
    "types-unread": "未读取的资源类型：{types}",
    "value-refused": "{path}：{message:t}；该值未使用",
    "lung-subtype-unknown": "肺癌未编码亚型：primary.site 未知",
    "primaries-several": "编码了多个原发癌：primary.site 未知",
    "histologies-several": "编码了多种组织学类型：原发肿瘤组织学类型未知",
    "medicines-unrecognised": "未能识别为骨改良药物（BMA）或所列危险因素药物的用药：{names}",
    "medicines-incomplete": "用药清单不完整（有药物无法读取）：可能遗漏其他骨改良药物",
    "latest-unusable": "{concept:t}：最新结果不可用；记为未知",
    "ecog-unreadable": "{name}：ECOG 值不在 0-4 范围内或无法读取；未使用",
    "karnofsky-beside-ecog": "{name}：已记录 ECOG 评分，未使用 Karnofsky 评分",
    "ecog-from-karnofsky": f"ecog：由 Karnofsky 评分（{{name}}）换算；{_KARNOFSKY_CITATION_ZH}",
    "karnofsky-unreadable": "{name}：Karnofsky 评分不在 10-100 范围内或无法读取；未使用",
    "disease-status-unused": "{name}：癌症疾病状态“{status:t}”：未使用",
    "stage-from-text": "{name}：TNM 分期组取自其文本",
    "stage-unreadable": "{name}：TNM 分期组无法读取；未使用",
    "value-not-number": "{name}：{path}.value：不是数值；未使用",
    "unit-without-system": (
        "{name}：{path}.code：未注明 UCUM 编码系统和代码的单位不适用于 LOINC {code}"
        "（请使用 {units}）；该值未使用"
    ),
    "unit-without-code": (
        "{name}：{path}.code：未注明 UCUM 代码的单位不适用于 LOINC {code}（请使用 {units}）；"
        "该值未使用"
    ),
    "unit-refused": (
        "{name}：{path}.code：单位“{unit}”不适用于 LOINC {code}（请使用 {units}）；该值未使用"
    ),
    "variant-unused": "{name}：变异（{genes}）：未使用",
    "variant-without-gene": "{name}：变异（未编码所检测的基因）：未使用",
    "receptor-unreadable": "{name}：{path} 结果无法读取；未使用",
}

TEMPLATES = {"en": _EN, "zh": _ZH}
# Our own words that fill `:t` slots: disease-status trends (codes.DISEASE_STATUS, and the
# reader's "unrecognised"), body sites outside bone (codes.OTHER_SITES), the reader's keys, and
# the profile's refusal a mapped value can meet (a unit conversion past the float range; any
# other refusal would be a reader bug, and its message stays as the validator wrote it).
TERMS: dict[str, dict[str, str]] = {
    "en": {},
    "zh": {
        "improved": "好转",
        "stable": "稳定",
        "worsened": "恶化",
        "undetermined": "无法确定",
        "unrecognised": "无法识别",
        "lung": "肺",
        "spinal cord": "脊髓",
        "uncoded": "未编码",
        "stage-group": "TNM 分期组",
        "Input should be a finite number": "换算后不是有限数值",
    },
}
SEPARATORS = {"en": ", ", "zh": "、"}  # between the items of a list slot


def _compiled(template: str) -> tuple[str, frozenset[str]]:
    """The template with plain slots (`{x:t}` -> `{x}`: str.format_map fills them at C speed),
    and the names of its `:t` slots."""
    parts, translated = [], set()
    for literal, name, spec, _ in Formatter().parse(template):
        parts.append(_escaped(literal))
        if name is not None:
            parts.append(f"{{{name}}}")
            if spec == "t":
                translated.add(name)
    return "".join(parts), frozenset(translated)


_COMPILED = {
    language: {key: _compiled(template) for key, template in table.items()}
    for language, table in TEMPLATES.items()
}


def render_note(item: MappingNote, language: str = "en") -> str:
    """The note's text in a report language: list slots joined, `:t` slots translated."""
    template, translated = _COMPILED[language][item.key]
    separator, terms = SEPARATORS[language], TERMS[language]
    values = {}
    for name, value in item.args:
        if name in translated:
            value = tuple(terms.get(word, word) for word in _items(value))
        values[name] = value if isinstance(value, str) else separator.join(value)
    return template.format_map(values)


def _items(value: _Value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def in_english_order(notes: Iterable[MappingNote]) -> list[MappingNote]:
    """One note per English text, sorted by it. Every language lists the notes in this order
    (the order English reports always had), so a zh report's notes pair with its en twin's."""
    by_text: dict[str, MappingNote] = {}
    for item in notes:
        by_text.setdefault(render_note(item, "en"), item)
    return [by_text[text] for text in sorted(by_text)]
