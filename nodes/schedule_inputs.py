"""The start/end-of-schedule inputs every reference-reading node shares (same names, ranges, tooltips)."""

from __future__ import annotations

from comfy_api.latest import io


def schedule_window_inputs(subject: str) -> list[io.Float.Input]:
    """``start_percent`` and ``end_percent``: the part of the schedule where ``subject`` is read."""
    return [
        io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.01,
                       tooltip=f"Part of the schedule where {subject} read: start (0 = first step)."),
        io.Float.Input("end_percent", default=1.0, min=0.0, max=1.0, step=0.01,
                       tooltip=f"Part of the schedule where {subject} read: end (1 = last step)."),
    ]
