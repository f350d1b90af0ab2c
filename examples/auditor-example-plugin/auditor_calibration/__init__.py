"""auditor-calibration: an example third-party audit plugin for auditor (see README.md)."""

from auditor_calibration.audit import CalibrationAudit
from auditor_calibration.calibration import Reliability, reliability

__all__ = ["CalibrationAudit", "Reliability", "reliability"]
__version__ = "0.1.0"
