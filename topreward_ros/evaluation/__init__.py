"""The evaluation layer: metrics, curves, reports, calibration and the collection annotator.

Its public names are imported on first use (exports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

if TYPE_CHECKING:
    from .bag_eval import evaluate_episodes, summarize
    from .calibration import Calibration, CalibrationError, calibrate
    from .curve import Curve, CurveReport, evaluate_video, stream_curve
    from .episode_annotator import AnnotateSettings, Annotator
    from .metrics import format_voc, min_max_progress, voc
    from .report import write_report

_MODULE_OF = {"evaluate_episodes": "bag_eval", "summarize": "bag_eval", "Calibration": "calibration",
              "CalibrationError": "calibration", "calibrate": "calibration", "Curve": "curve", "CurveReport": "curve",
              "evaluate_video": "curve", "stream_curve": "curve", "AnnotateSettings": "episode_annotator",
              "Annotator": "episode_annotator", "format_voc": "metrics", "min_max_progress": "metrics",
              "voc": "metrics", "write_report": "report"}
__all__ = sorted(_MODULE_OF)
__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
