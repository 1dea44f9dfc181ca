"""The evaluation layer: metrics, curves, reports, calibration and the collection annotator.

Its public names, each imported from its module on first use (PEP 562), so that importing this package (or
any one module of it) loads no other module and no heavy dependency.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bag_eval import evaluate_episodes, run_episode, summarize
    from .calibration import Calibration, CalibrationError, calibrate
    from .curve import Curve, CurveReport, evaluate_video
    from .episode_annotator import AnnotateSettings, Annotator
    from .metrics import format_voc, min_max_progress, voc
    from .report import write_report

_MODULE_OF = {
    "evaluate_episodes": "bag_eval",
    "run_episode": "bag_eval",
    "summarize": "bag_eval",
    "Calibration": "calibration",
    "CalibrationError": "calibration",
    "calibrate": "calibration",
    "Curve": "curve",
    "CurveReport": "curve",
    "evaluate_video": "curve",
    "AnnotateSettings": "episode_annotator",
    "Annotator": "episode_annotator",
    "format_voc": "metrics",
    "min_max_progress": "metrics",
    "voc": "metrics",
    "write_report": "report",
}

__all__ = [
    "AnnotateSettings",
    "Annotator",
    "Calibration",
    "CalibrationError",
    "Curve",
    "CurveReport",
    "calibrate",
    "evaluate_episodes",
    "evaluate_video",
    "format_voc",
    "min_max_progress",
    "run_episode",
    "summarize",
    "voc",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
