"""Draw the triple graph as an RGB picture (OpenCV) for a preview node.

Layout: one column per depth (garments, then their parts and patterns, then attribute values);
entities are white boxes, attribute values grey boxes, edges arrows labelled with the relation.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from .schema import Triple

LINK_RELATIONS = ("has-feature", "has-pattern")
BACKGROUND = (250, 250, 247)
ENTITY_FILL = (255, 255, 255)
VALUE_FILL = (225, 228, 235)
INK = (40, 40, 48)
EDGE = (90, 110, 170)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _columns(triples: list[Triple]) -> list[list[str]]:
    entities = list(dict.fromkeys(t.entity for t in triples))
    children = {t.value for t in triples if t.relation in LINK_RELATIONS and t.value in entities}
    depth: dict[str, int] = {name: 0 for name in entities if name not in children}
    for _ in range(len(entities)):
        for entity, relation, value in triples:
            if relation in LINK_RELATIONS and entity in depth and value in entities:
                depth.setdefault(value, depth[entity] + 1)
    for name in entities:
        depth.setdefault(name, 0)
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=0) + 2)]
    for name in entities:
        columns[depth[name]].append(name)
    for index, (entity, relation, value) in enumerate(triples):
        if value not in depth:
            columns[min(depth[entity] + 1, len(columns) - 1)].append(f"{value}\x00{index}")
    return [column for column in columns if column]


def render_graph(triples: Iterable[Triple], width: int = 768, height: int = 512) -> np.ndarray:
    """The graph as an (height, width, 3) uint8 RGB image; an empty graph says so."""
    triples = list(triples)
    image = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)  # (H, W, 3)
    if not triples:
        cv2.putText(image, "no triples", (10, height // 2), FONT, 0.6, INK, 1, cv2.LINE_AA)
        return image
    columns = _columns(triples)
    scale = max(0.3, min(0.5, height / (22.0 * max(len(column) for column in columns))))
    centers: dict[str, tuple[int, int]] = {}
    column_width = width / len(columns)
    for col, names in enumerate(columns):
        for row, name in enumerate(names):
            centers[name] = (int(column_width * (col + 0.5)), int(height * (row + 0.5) / len(names)))
    value_slot = {index: f"{t.value}\x00{index}" for index, t in enumerate(triples) if f"{t.value}\x00{index}" in centers}
    for index, (entity, relation, value) in enumerate(triples):
        target = value_slot.get(index, value)
        start, end = centers[entity], centers[target]
        cv2.arrowedLine(image, start, end, EDGE, 1, cv2.LINE_AA, tipLength=0.02)
        label_at = ((start[0] + end[0]) // 2 - 20, (start[1] + end[1]) // 2 - 3)
        cv2.putText(image, relation, label_at, FONT, scale * 0.8, EDGE, 1, cv2.LINE_AA)
    for name, (x, y) in centers.items():
        text, _, slot = name.partition("\x00")
        (text_w, text_h), _ = cv2.getTextSize(text, FONT, scale, 1)
        fill = VALUE_FILL if slot else ENTITY_FILL
        top_left, bottom_right = (x - text_w // 2 - 4, y - text_h // 2 - 5), (x + text_w // 2 + 4, y + text_h // 2 + 5)
        cv2.rectangle(image, top_left, bottom_right, fill, -1)
        cv2.rectangle(image, top_left, bottom_right, INK, 1)
        cv2.putText(image, text, (x - text_w // 2, y + text_h // 2), FONT, scale, INK, 1, cv2.LINE_AA)
    return image
