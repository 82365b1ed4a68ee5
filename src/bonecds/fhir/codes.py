"""Terminology for the FHIR mapping: code systems, code tables and the helpers that match them.

The tables say what a (system, code) pair means to bonecds (terminology.md §1: never a code
alone); the mapping itself is in `bonecds.fhir.read`, draft orders in `bonecds.fhir.orders`. They
live apart so that the codes, with their verification status (docs/cds-hooks.md; U = written
from knowledge, to be checked), can be reviewed in one place. `identify_drug` and
`is_dental_procedure` are here because the mapping and the draft orders both use them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BMA_AGENTS",
    "BONE_SITES",
    "BONE_SITE_WORDS",
    "CONDITION_CODES",
    "CONDITION_NOTES",
    "CURRENT_STATUS",
    "DISEASE_STATUS",
    "DISEASE_STATUS_LOINC",
    "DISEASE_STATUS_PROFILE",
    "DRIVER_GENES",
    "ECOG_ANSWERS",
    "ECOG_LOINC",
    "HGNC",
    "ICD10CM",
    "ICDO3",
    "KARNOFSKY_CITATION",
    "KARNOFSKY_LOINC",
    "KARNOFSKY_TO_ECOG",
    "LOINC",
    "LOINC_LABS",
    "LONG_BONES",
    "MORPHOLOGY",
    "NOT_USED_LOINC",
    "OBSERVATION_DONE",
    "OTHER_SITES",
    "PERIOD_WEEKS",
    "PRIMARY_SITES",
    "RADIOTHERAPY_COURSE",
    "RECEPTOR_LOINC",
    "REFERENCE_LIMITS",
    "RESULT_ANSWERS",
    "RXNORM",
    "SNOMED",
    "SPINE_SITES",
    "SYSTEMIC_CLASSES",
    "TNM_STAGE_GROUP",
    "UCUM",
    "UNITS",
    "UNMAPPED_LAB_LOINC",
    "VARIANT_LOINC",
    "as_dict",
    "as_list",
    "code_of",
    "coded",
    "codes_in",
    "concept_text",
    "identify_drug",
    "is_dental_procedure",
    "resolve_medication",
]

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
HGNC = "http://www.genenames.org"

# Condition codes -> concept. ICD entries are categories matched by prefix (terminology.md §2).
CONDITION_CODES: dict[tuple[str, str], str] = {
    **{(ICD10CM, c): "bone-mets" for c in ("C79.51", "C79.52", "C7B.03")},
    (ICD10, "C79.5"): "bone-mets",
    (SNOMED, "94222008"): "bone-mets",
    (SNOMED, "128462008"): "secondary",  # bone metastasis only with a bone bodySite (mCODE)
    (SNOMED, "94225005"): "secondary-elsewhere",  # Secondary malignant neoplasm of brain (mCODE)
    **{(s, "C50"): "breast" for s in (ICD10CM, ICD10)},
    **{(s, "C61"): "prostate" for s in (ICD10CM, ICD10)},
    **{(s, "C34"): "lung" for s in (ICD10CM, ICD10)},
    (SNOMED, "254637007"): "lung_nsclc",
    # SNOMED CT US Edition disorders seen in published mCODE 4.0.0 / FHIR R4 examples, and the
    # descendants needed (no terminology server: each descendant is listed, U unless noted).
    (SNOMED, "254837009"): "breast",  # Malignant neoplasm of breast (mCODE example)
    (SNOMED, "353431000119107"): "breast",  # Primary malignant neoplasm of female left breast
    (SNOMED, "424132000"): "lung_nsclc",  # NSCLC, TNM stage 1: a descendant of 254637007 (U)
    (SNOMED, "363346000"): "cancer-unspecified",  # Malignant neoplastic disease (mCODE root)
    (SNOMED, "254632001"): "lung_sclc",
    # Synthea's codes (seen in its R4 output with these displays; hierarchy U): colon cancer,
    # and its prostate and lung codes that are not an invasive cancer (a note with the reason).
    (SNOMED, "93761005"): "colorectal",  # Primary malignant neoplasm of colon
    (SNOMED, "109838007"): "colorectal",  # Overlapping malignant neoplasm of colon
    (SNOMED, "363406005"): "colorectal",  # Malignant neoplasm of colon
    (SNOMED, "126906006"): "neoplasm-unspecified",  # Neoplasm of prostate
    (SNOMED, "92691004"): "in-situ",  # Carcinoma in situ of prostate
    (SNOMED, "162573006"): "suspected",  # Suspected lung cancer (situation)
    **{(s, "C64"): "renal" for s in (ICD10CM, ICD10)},
    **{(s, "C90.0"): "myeloma" for s in (ICD10CM, ICD10)},
    **{(s, c): "colorectal" for s in (ICD10CM, ICD10) for c in ("C18", "C19", "C20")},  # U
    **{(s, c): "other" for s in (ICD10CM, ICD10) for c in ("C43", "C73")},
    **{(s, c): "bone-primary" for s in (ICD10CM, ICD10) for c in ("C40", "C41")},
    **{(s, "D48.0"): "gctb" for s in (ICD10CM, ICD10)},  # the GCTB -> D48.0 mapping is U
    **{(ICD10CM, c): "cord-compression" for c in ("G95.20", "G95.29", "G83.4")},
    (ICD10, "G95.2"): "cord-compression",
    (SNOMED, "71286001"): "cord-compression",
    (ICD10CM, "M87.180"): "mronj",
    (ICD10CM, "Z33.1"): "pregnant",
    (SNOMED, "77386006"): "pregnant",
}
# Condition concepts that are noted, with the reason, rather than mapped.
CONDITION_NOTES = {
    "neoplasm-unspecified": "neoplasm of unspecified behaviour: primary.site not set from it",
    "in-situ": "carcinoma in situ, not invasive: primary.site not set from it",
    "suspected": "a suspected diagnosis: not used",
}
PRIMARY_SITES = {"breast", "prostate", "lung", "lung_nsclc", "lung_sclc", "renal", "myeloma"}
PRIMARY_SITES |= {"colorectal", "other", "bone-primary", "gctb"}
# ICD-O-3 morphology (mCODE histology extension or a Condition coding) -> primary site.
MORPHOLOGY = {
    "9180/3": "osteosarcoma",
    "9260/3": "ewing",
    "9364/3": "ewing",
    "9220/3": "chondrosarcoma",
    "9250/1": "gctb",
    **{f"804{n}/3": "lung_sclc" for n in range(1, 6)},  # small cell carcinoma: U
}
BONE_SITES = {  # SNOMED body structures (TG-263 map in mCODE, terminology.md §3)
    "272673000": "bone",
    "119186007": "bone",
    "71341001": "femur",
    "29627003": "femur",
    "85050009": "humerus",
    "113197003": "rib",
    "51299004": "clavicle",
    "118645006": "pelvis",
    "22356005": "pelvis",
    "37783008": "pelvis",
    "89546000": "skull",
    "91609006": "mandible",
    "70925003": "maxilla",
    "14016003": "bone marrow",
    "421060004": "spine",  # vertebral column structure: U (terminology.md §3, not in TG-263 map)
}
LONG_BONES = {"femur", "humerus"}
SPINE_SITES = {"spine"}
# Body-site words that name a bone when the SNOMED code is not in BONE_SITES (read from text).
BONE_SITE_WORDS = {
    "vertebra": "spine",
    "spine": "spine",
    "spinal column": "spine",
    "sacrum": "spine",
    "femur": "femur",
    "humerus": "humerus",
    "rib": "rib",
    "pelvi": "pelvis",
    "bone": "bone",
}
# Non-bone body sites of the TG-263 map (terminology.md §3): a metastatic site other than bone.
OTHER_SITES = {"39607008": "lung", "2748008": "spinal cord"}

# LOINC -> (profile field, analyte). Quantities need UCUM units (terminology.md §5, §8).
LOINC_LABS = {
    **{code: ("labs.scr", "creatinine") for code in ("2160-0", "14682-9", "77140-2")},
    "2164-2": ("labs.crcl_ml_min", "crcl"),  # measured clearance only, never an eGFR
    **{code: ("labs.calcium_total", "calcium") for code in ("17861-6", "2000-8")},
    **{code: ("labs.calcium_ionised", "calcium") for code in ("1994-3", "1995-0", "17864-0")},
    "1751-7": ("labs.albumin", "albumin"),
    "6768-6": ("labs.alp_u_l", "alp"),
    "2039-6": ("labs.cea_ng_ml", "cea"),
    "29463-7": ("weight_kg", "weight"),
    # Written from knowledge (U): 25-OH vitamin D, magnesium, phosphate in serum or plasma.
    "1989-3": ("labs.vitamin_d_25oh", "vitamin_d"),
    "19123-9": ("labs.magnesium", "magnesium"),
    "2777-1": ("labs.phosphate", "phosphate"),
}
NOT_USED_LOINC = {  # present in EHR data but deliberately not mapped; the reason is reported
    **{c: "eGFR is not a Cockcroft-Gault CrCl" for c in ("33914-3", "62238-1", "98979-8")},
    "98980-6": "eGFR is not a Cockcroft-Gault CrCl",
    "29265-6": "a laboratory-corrected calcium is not used; total calcium and albumin are",
}
# analyte -> UCUM code -> (unit written in the profile, or "" for a bare number; factor)
UNITS: dict[str, dict[str, tuple[str, float]]] = {
    "creatinine": {
        "mg/dL": ("mg/dL", 1.0),
        "umol/L": ("umol/L", 1.0),
        "mmol/L": ("umol/L", 1000.0),
        "mg/L": ("mg/dL", 0.1),
    },
    "calcium": {"mg/dL": ("mg/dL", 1.0), "mmol/L": ("mmol/L", 1.0)},
    "albumin": {"g/dL": ("g/dL", 1.0), "g/L": ("g/L", 1.0)},
    "crcl": {"mL/min": ("", 1.0)},
    "alp": {"U/L": ("", 1.0)},
    "cea": {"ng/mL": ("", 1.0), "ug/L": ("", 1.0)},
    "weight": {"kg": ("", 1.0), "g": ("", 0.001), "[lb_av]": ("", 0.45359237)},
    "vitamin_d": {"ng/mL": ("ng/mL", 1.0), "nmol/L": ("nmol/L", 1.0)},
    "magnesium": {"mg/dL": ("mg/dL", 1.0), "mmol/L": ("mmol/L", 1.0), "meq/L": ("mEq/L", 1.0)},
    "phosphate": {"mg/dL": ("mg/dL", 1.0), "mmol/L": ("mmol/L", 1.0)},
}
# Lab codes seen in real feeds that are not in LOINC_LABS: reported, never silently dropped.
UNMAPPED_LAB_LOINC = {
    "38483-4": "creatinine in blood (Synthea): not a serum or plasma creatinine; CrCl not derived",
    "49765-1": "calcium in blood (Synthea): not serum total calcium; not used",
}
# ECOG as a LOINC answer (LL529-9). LA9622-7 is V (terminology.md §5); the others are U.
ECOG_ANSWERS = {
    "LA9622-7": 0,
    "LA9623-5": 1,
    "LA9624-3": 2,
    "LA9625-0": 3,
    "LA9626-8": 4,
}
# Receptor status (mCODE 4.0.0 tumour-marker examples): LOINC test -> profile field, and the
# LOINC answers those examples use (LA6576-8 Positive, LA6577-6 Negative).
RECEPTOR_LOINC = {"85337-4": "er", "85339-0": "pr", "48676-1": "her2"}
RESULT_ANSWERS = {"LA6576-8": "positive", "LA6577-6": "negative"}
RESULT_ANSWERS |= {"LA9633-4": "positive", "LA9634-2": "negative"}  # variant present / absent
# Genes studied (HGNC): ALK is V (terminology.md §5); EGFR is U there; ROS1, BRAF, KRAS are U.
DRIVER_GENES = {
    "HGNC:427": "alk",
    "HGNC:3236": "egfr",
    "HGNC:10261": "ros1",
    "HGNC:1097": "braf",
    "HGNC:6407": "kras",
}
ECOG_LOINC = "89247-1"
KARNOFSKY_LOINC = "89243-0"
# Karnofsky -> ECOG (lowest Karnofsky score of each ECOG grade): KPS 100 = 0, 80-90 = 1,
# 70 = 2, 50-60 = 3, 10-40 = 4; derived from 5,844 paired assessments, 78% agreement. Checked
# against the article (publisher wjgnet.com and PMC6230919): the same categories, hit rate 78.1%.
KARNOFSKY_TO_ECOG = ((100, 0), (80, 1), (70, 2), (50, 3), (10, 4))
KARNOFSKY_CITATION = (
    "Prasad KT et al., World J Clin Oncol 2018;9(7):140-7, doi:10.5306/wjco.v9.i7.140 "
    "(KPS 100, 80-90, 70, 50-60, 10-40 = ECOG 0-4; 78.1% agreement in 5,844 paired assessments)"
)
DISEASE_STATUS_LOINC = "97509-4"
VARIANT_LOINC = "69548-6"
# TNM stage grouping, clinical and pathologic (mCODE 4.0.0 mcode-tnm-stage-group-staging-type-vs).
TNM_STAGE_GROUP = {"399390009", "399537006", "399588009"}
# CancerDiseaseStatus values (mCODE 4.0.0 mcode-condition-status-trend-vs).
DISEASE_STATUS = {
    "268910001": "improved",
    "359746009": "stable",
    "271299001": "worsened",
    "709137006": "undetermined",
}
# The clinician's judgement of the trend is what the profile's `disease_status` records.
DISEASE_STATUS_PROFILE = {"improved": "responding", "stable": "stable", "worsened": "progressing"}
OBSERVATION_DONE = {"final", "amended", "corrected"}
REFERENCE_LIMITS = {  # the laboratory's reference range, read with the value it belongs to
    "labs.calcium_total": (("low", "labs.calcium_lln"), ("high", "labs.calcium_uln")),
    "labs.calcium_ionised": (("low", "labs.calcium_ionised_lln"),),
}

# Medicines: RxNorm ingredient and product codes, ATC, and name stems (English and Chinese).
# Only zoledronic acid 77655 is partly verified; the other codes are U (terminology.md §6).
_DRUG_ROWS = (
    (
        "zoledronic_acid",
        "77655 351114 705824",
        "M05BA08",
        "zoledron zometa aclasta reclast 唑来膦酸",
    ),
    ("denosumab", "993449", "M05BX04", "denosumab xgeva prolia 地舒单抗"),
    ("pamidronate", "11473", "M05BA03", "pamidron aredia 帕米膦酸"),
    ("ibandronate", "115264", "M05BA06", "ibandron bondronat boniva 伊班膦酸"),
    ("antiangiogenic", "253337", "L01FG01 L01XC07", "bevacizumab 贝伐珠单抗"),
    # prednisone / prednisolone by name only (Synthea); topical and inhaled steroids are not listed
    ("corticosteroid", "3264", "H02AB02", "dexamethasone 地塞米松 prednisone prednisolone"),
    ("aromatase_inhibitor", "84857", "", "anastrozole letrozole exemestane"),  # 84857: mCODE
    ("tamoxifen", "", "", "tamoxifen"),
    ("anti_her2", "", "", "trastuzumab pertuzumab"),
    ("cdk46_inhibitor", "", "", "palbociclib ribociclib abemaciclib"),
    ("adt", "", "", "leuprorelin leuprolide goserelin triptorelin degarelix"),
    ("ar_pathway_inhibitor", "", "", "abiraterone enzalutamide apalutamide darolutamide"),
    (  # RxNorm codes as the mCODE 4.0.0 cancer-related medication examples code them
        "chemotherapy",
        "3002 3639 56946 309311 5650 11202",
        "",
        "cyclophosphamide doxorubicin paclitaxel cisplatin idarubicin vincristine"
        " docetaxel oxaliplatin etoposide",  # the last three by name only (Synthea prescribes them)
    ),
    (
        "ici",
        "1547545 1597876 1792776",
        "L01FF01 L01FF02 L01FF05",
        "pembrolizumab nivolumab atezolizumab",
    ),
    (
        "tki",
        "1721560 328134 337525 1148495 1727455 1535457 2103164",
        "L01EB01 L01EB02 L01EB04 L01ED01 L01ED02 L01ED03 L01ED05",
        "osimertinib gefitinib erlotinib icotinib 埃克替尼 crizotinib alectinib"
        " ceritinib lorlatinib",
    ),
)
DRUGS = {
    row[0]: (set(row[1].split()), set(row[2].split()), tuple(row[3].split())) for row in _DRUG_ROWS
}
BMA_AGENTS = ("zoledronic_acid", "denosumab", "pamidronate", "ibandronate")
# DRUGS rows that are a class of `meds.systemic_therapy` (profile.SystemicTherapyClass).
SYSTEMIC_CLASSES = (
    *("aromatase_inhibitor", "tamoxifen", "anti_her2", "cdk46_inhibitor", "adt"),
    "ar_pathway_inhibitor",
)
# Timing.repeat.periodUnit (UCUM units of time) -> weeks, for a dosing interval.
PERIOD_WEEKS = {"d": 1 / 7, "wk": 1.0, "mo": 52 / 12}
CURRENT_STATUS = {
    "MedicationRequest": {"active", "on-hold"},
    "MedicationStatement": {"active", "intended"},
}
RADIOTHERAPY_COURSE = "1217123003"  # mCODE radiotherapy course summary (terminology.md §3, V)
# Invasive dental procedures: no SNOMED code is verified (terminology.md §3), so U code + text.
DENTAL_CODES = {(SNOMED, "55162003")}
DENTAL_TEXT: tuple[str, ...] = ("tooth extraction", "dental extraction", "extraction of tooth")
DENTAL_TEXT += ("dental implant", "oral surgery", "dentoalveolar", "拔牙")


def as_list(value: Any) -> list[Any]:
    """A FHIR array, or [] for anything else (null, an object where an array belongs)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """A FHIR object, or {} for anything else."""
    return value if isinstance(value, dict) else {}


def codings(concept: Any) -> list[dict[str, Any]]:
    """The codings of a CodeableConcept that are objects with text (or absent) `system` and
    `code`; null or odd shapes give none, so a code can always be looked up in a table.
    Written out in one comprehension: a Bundle asks for codings a few hundred times."""
    found = concept.get("coding") if isinstance(concept, dict) else None
    if not isinstance(found, list):
        return []
    return [
        c
        for c in found
        if isinstance(c, dict)
        and isinstance(c.get("system"), _TEXT_OR_NONE)
        and isinstance(c.get("code"), _TEXT_OR_NONE)
    ]


_TEXT_OR_NONE = (str, type(None))


def identify_drug(request: dict[str, Any], index: dict[str, Any]) -> str | None:
    """The DRUGS key of a MedicationRequest/Statement's medicine, or None if unrecognised."""
    concept = request.get("medicationCodeableConcept")
    reference = as_dict(request.get("medicationReference"))
    if concept is None and reference:
        medication = resolve_medication(request, index)
        concept = as_dict(medication).get("code") or {"text": reference.get("display")}
    if not isinstance(concept, dict):
        return None
    coded = [_DRUG_CODES[key] for c in codings(concept) if (key := _key(c)) in _DRUG_CODES]
    if coded:  # the first DRUGS row the codes name, as a walk down the table finds it
        return min(coded, key=_DRUG_ORDER.__getitem__)
    text = " ".join(_texts(concept)).lower()
    return next(
        (name for name, (_r, _a, stems) in DRUGS.items() if any(s in text for s in stems)), None
    )


def resolve_medication(request: dict[str, Any], index: dict[str, Any]) -> dict[str, Any] | None:
    """The Medication a `medicationReference` points to, from `contained` or the index."""
    target = as_dict(request.get("medicationReference")).get("reference")
    if not isinstance(target, str):
        return None
    contained = as_list(request.get("contained"))
    local = {f"#{r.get('id')}": r for r in contained if isinstance(r, dict)}
    found = local.get(target) or index.get(target)
    return found if isinstance(found, dict) else None


def is_dental_procedure(resource: dict[str, Any]) -> bool:
    """An invasive dental procedure, by (U) code or by text (terminology.md §3, §7)."""
    code = resource.get("code")
    if any(_key(c) in DENTAL_CODES for c in codings(code)):
        return True
    text = " ".join(_texts(code)).lower()
    return any(stem in text for stem in DENTAL_TEXT)


def _texts(concept: Any) -> list[str]:
    words = [as_dict(concept).get("text"), *(c.get("display") for c in codings(concept))]
    return [word for word in words if isinstance(word, str)]


def concept_text(concept: Any) -> str:
    """A CodeableConcept's text, else its first display, else its first code: for notes
    (the name of a code, never a patient value); "uncoded" when there is none."""
    found = codings(concept)
    names = (as_dict(concept).get("text"), *(c.get("display") for c in found))
    return next(
        (name for name in (*names, *(c.get("code") for c in found)) if isinstance(name, str)),
        "uncoded",
    )


def _key(coding: dict[str, Any]) -> tuple[Any, Any]:
    return coding.get("system"), coding.get("code")


# (system, code) -> the DRUGS row it names, and each row's place in the table.
_DRUG_CODES = {
    (system, code): name
    for name, (rxnorm, atc, _stems) in reversed(DRUGS.items())
    for system, codes in ((RXNORM, rxnorm), (ATC, atc))
    for code in codes
}
_DRUG_ORDER = {name: place for place, name in enumerate(DRUGS)}


def codes_in(concept: Any, system: str) -> list[str]:
    # `codings` keeps only codes that are text or absent
    return [
        c["code"]
        for c in codings(concept)
        if c.get("system") == system and c.get("code") is not None
    ]


def code_of(concept: Any) -> str | None:
    codes: list[str] = [c["code"] for c in codings(concept) if isinstance(c.get("code"), str)]
    return codes[0] if codes else None


def coded(concept: Any, prefix: bool) -> list[tuple[str, str]]:
    """Table keys matching the concept's codings; ICD categories match by prefix (C50 ~ C50.912)."""
    found = []
    for coding in codings(concept):
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(code, str) or not isinstance(system, str):
            continue
        if (system, code) in CONDITION_CODES:
            found.append((system, code))
        if prefix and system in (ICD10CM, ICD10):
            bare = code.replace(".", "")
            stems = (_ICD_STEMS.get((system, bare[:size])) for size in range(len(bare), 0, -1))
            found += [key for key in stems if key is not None and key[1] != code]
    return found


# ICD entries by their code without the dot, for the prefix match of `coded`.
_ICD_STEMS = {
    (system, code.replace(".", "")): (system, code)
    for system, code in CONDITION_CODES
    if system in (ICD10CM, ICD10)
}
