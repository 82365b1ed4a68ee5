"""bonecds: clinical decision support for bone malignancy and bone metastasis care.

Research prototype, not a medical device.
"""

from bonecds.api import (
    ENGINE_VERSION,
    Knowledge,
    __version__,
    evaluate,
    load_knowledge,
    why_not,
)
from bonecds.errors import (
    BonecdsError,
    Diagnostic,
    InputError,
    InternalError,
    ProfileError,
    RuleError,
)
from bonecds.profile import PatientProfile, load_profile
from bonecds.report import Report, WhyNot

__all__ = [
    "ENGINE_VERSION",
    "BonecdsError",
    "Diagnostic",
    "InputError",
    "InternalError",
    "Knowledge",
    "PatientProfile",
    "ProfileError",
    "Report",
    "RuleError",
    "WhyNot",
    "__version__",
    "evaluate",
    "load_knowledge",
    "load_profile",
    "why_not",
]
