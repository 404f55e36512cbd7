"""The inference record and label types."""

from aisre.records.ids import new_record_id, record_id_time
from aisre.records.record import RECORD_FIELDS, InferenceRecord, Label, Route, Status
from aisre.records.signal import Signal

__all__ = [
    "RECORD_FIELDS",
    "InferenceRecord",
    "Label",
    "Route",
    "Signal",
    "Status",
    "new_record_id",
    "record_id_time",
]
