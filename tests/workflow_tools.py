"""Offline checks and UI-to-API conversion for ComfyUI workflow files, driven by saved /object_info JSON.

The UI format is what the ComfyUI frontend saves and loads (schema 0.4: ``links`` as
``[link_id, origin_id, origin_slot, target_id, target_slot, type]``; link objects as in schema 1
are accepted too). The API format is the ``prompt`` body of ``POST /prompt``.

The rules below follow the frontend (Comfy-Org/ComfyUI_frontend) rather than the backend:

* widgets are the non-socket inputs in ``input_order`` order (required, then optional, then any
  input missing from ``input_order``); ``forceInput`` inputs are sockets;
* an INT with ``control_after_generate`` (or named ``seed``/``noise_seed`` without the flag) and a
  FLOAT with the flag save one extra ``widgets_values`` entry (the control mode); a COMBO with the
  flag saves two (mode and filter list); the first required media-upload combo (``image_upload``,
  ``video_upload``, ``animated_image_upload``) adds an ``upload`` button whose value is saved last;
* ``Note``, ``MarkdownNote``, ``Reroute`` and ``PrimitiveNode`` exist only in the frontend;
* conversion mirrors ``graphToPrompt`` (``src/utils/executionUtil.ts``) and
  ``ExecutableNodeDTO.resolveInput/resolveOutput``: muted (mode 2) and bypassed (mode 4) nodes are
  left out, a bypassed node passes through its first input of a matching type, Reroutes pass their
  input through, a PrimitiveNode's first value replaces the target widget's value, and inputs
  linked to nodes that are not in the prompt are deleted.

Not modelled: subgraphs and group nodes (reported as unknown types), dynamic-prompt expansion of
``{a|b}`` text (the frontend picks at random), PrimitiveNode text replacement, and widgets added
by frontend extensions (nodes with those are not length-checked).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FRONTEND_ONLY_TYPES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
MODE_MUTED = 2
MODE_BYPASS = 4
CONTROL_MODES = ("fixed", "increment", "decrement", "randomize")
COMBO_CONTROL_MODES = (*CONTROL_MODES, "increment-wrap")
WIDGET_TYPES = frozenset({"INT", "FLOAT", "BOOLEAN", "STRING", "COMBO"})
# Widget types that frontend extensions draw; their saved values are not modelled here.
EXTENSION_WIDGET_TYPES = frozenset(
    {"WEBCAM", "LOAD_3D", "LOAD_3D_ANIMATION", "PREVIEW_3D", "AUDIO_UI", "AUDIO_RECORD",
     "MARKDOWN", "COLOR", "IMAGECOMPARE"}
)
MEDIA_UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload")
OPAQUE_UPLOAD_FLAGS = ("audio_upload", "file_upload")
SEED_INPUT_NAMES = ("seed", "noise_seed")
# Combo values with these endings name files in the models/input folders of one installation.
FILE_SUFFIXES = (
    ".safetensors", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl", ".sft", ".gguf", ".onnx",
    ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".mp4", ".webm", ".mov",
    ".wav", ".mp3", ".flac", ".ogg", ".glb", ".gltf", ".obj", ".fbx", ".stl", ".latent",
)


class ObjectInfoError(ValueError):
    """An /object_info JSON file is malformed, or two files define one node id differently."""


class WorkflowFormatError(ValueError):
    """A workflow cannot be read or converted (not UI format, dangling links, unknown active node)."""


@dataclass(frozen=True)
class InputSpec:
    """One node input from /object_info: name, socket type (``COMBO`` for lists), options."""

    name: str
    type: str
    options: dict[str, Any]
    required: bool
    choices: list[Any] | None

    @property
    def is_widget(self) -> bool:
        """True when the frontend draws a widget for this input instead of a bare socket."""
        return self.type in WIDGET_TYPES and not self.options.get("forceInput", False)


@dataclass(frozen=True)
class WidgetSlot:
    """One saved ``widgets_values`` position: an input's value or a UI-only extra after it."""

    name: str
    kind: str  # "value" | "control_after_generate" | "control_filter_list" | "upload"

    @property
    def label(self) -> str:
        """How messages name this position: ``seed``, ``seed:control_after_generate``, ``upload``."""
        return self.name if self.kind in ("value", "upload") else f"{self.name}:{self.kind}"


@dataclass(frozen=True)
class NodeDef:
    """A parsed /object_info entry: inputs in frontend order, outputs, and the widget layout."""

    type: str
    display_name: str
    inputs: dict[str, InputSpec]
    outputs: list[str]
    widget_layout: list[WidgetSlot] | None  # None: extension widgets, layout unknown


@dataclass(frozen=True)
class Link:
    """A UI-format link between an output slot and an input slot."""

    id: int
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: str


@dataclass(frozen=True)
class Source:
    """What an input resolves to: a real node's output, or a PrimitiveNode's value."""

    node_id: str | None = None
    slot: int = 0
    value: Any = None

    @property
    def is_value(self) -> bool:
        """True when this source is a constant (PrimitiveNode) rather than a link."""
        return self.node_id is None


@dataclass(frozen=True)
class Graph:
    """A workflow's nodes (by string id, in file order) and links (by id)."""

    nodes: dict[str, dict[str, Any]]
    links: dict[int, Link]

    def input_at(self, node_id: str, slot: int) -> dict[str, Any] | None:
        """The saved input entry at ``slot`` of a node, or None when out of range."""
        inputs = self.nodes[node_id].get("inputs") or []
        return inputs[slot] if 0 <= slot < len(inputs) else None


# ----------------------------------------------------------------------------- object_info


def load_object_info(*paths: str | Path) -> dict[str, Any]:
    """Merge several /object_info JSON files (core plus pack snapshots) into one dict by node id.

    A node id present in two files must have the same definition there; otherwise
    ObjectInfoError names both files (ComfyUI itself silently drops a custom node whose id
    collides with a core one).
    """
    merged: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for raw_path in paths:
        path = Path(raw_path)
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ObjectInfoError(f"{path}: expected a JSON object keyed by node id")
        for node_id, node_info in data.items():
            if not isinstance(node_info, dict) or not isinstance(node_info.get("input"), dict):
                raise ObjectInfoError(f"{path}: entry {node_id!r} has no 'input' object")
            if node_id in merged and merged[node_id] != node_info:
                raise ObjectInfoError(
                    f"node id {node_id!r} is defined differently in {origin[node_id]} and {path}"
                )
            merged[node_id] = node_info
            origin.setdefault(node_id, path)
    return merged


def _parse_input(name: str, raw: Any, required: bool) -> InputSpec:
    """Turn one ``[type_or_choices, options]`` entry into an InputSpec."""
    kind = raw[0] if isinstance(raw, (list, tuple)) and raw else raw
    options = raw[1] if isinstance(raw, (list, tuple)) and len(raw) > 1 and raw[1] else {}
    if isinstance(kind, list):
        return InputSpec(name, "COMBO", dict(options), required, list(kind))
    choices = options.get("options") if kind == "COMBO" else None
    return InputSpec(name, str(kind), dict(options), required, choices)


def _ordered_inputs(info: dict[str, Any]) -> dict[str, InputSpec]:
    """Inputs in the frontend's order: input_order required, optional, then unlisted ones."""
    sections = info.get("input") or {}
    order = info.get("input_order") or {}
    specs: dict[str, InputSpec] = {}
    for section in ("required", "optional"):
        defined = sections.get(section) or {}
        for name in order.get(section, []):
            if name in defined:
                specs[name] = _parse_input(name, defined[name], section == "required")
    for section in ("required", "optional"):
        for name, raw in (sections.get(section) or {}).items():
            if name not in specs:
                specs[name] = _parse_input(name, raw, section == "required")
    return specs


def _extras_after(spec: InputSpec) -> list[str]:
    """The UI-only values the frontend saves right after this widget's own value."""
    flag = spec.options.get("control_after_generate")
    if spec.type == "INT":
        has_control = flag if flag is not None else spec.name in SEED_INPUT_NAMES
        return ["control_after_generate"] if has_control else []
    if spec.type == "FLOAT" and flag:
        return ["control_after_generate"]
    if spec.type == "COMBO" and flag:
        return ["control_after_generate", "control_filter_list"]
    return []


def _widget_layout(specs: dict[str, InputSpec]) -> list[WidgetSlot] | None:
    """Every ``widgets_values`` position in order, or None when an extension owns a widget."""
    if any(s.type in EXTENSION_WIDGET_TYPES or _has_flag(s, OPAQUE_UPLOAD_FLAGS) for s in specs.values()):
        return None
    layout: list[WidgetSlot] = []
    for spec in specs.values():
        if spec.is_widget:
            layout.append(WidgetSlot(spec.name, "value"))
            layout.extend(WidgetSlot(spec.name, extra) for extra in _extras_after(spec))
    upload = next(
        (s for s in specs.values() if s.required and s.type == "COMBO" and _has_flag(s, MEDIA_UPLOAD_FLAGS)),
        None,
    )
    if upload is not None:
        # The upload button is appended to `required` and sits after all listed widgets.
        layout.append(WidgetSlot("upload", "upload"))
    return layout


def _has_flag(spec: InputSpec, flags: tuple[str, ...]) -> bool:
    """True when any of ``flags`` is set in the input's options."""
    return any(spec.options.get(flag) for flag in flags)


def node_def(object_info: dict[str, Any], node_type: str) -> NodeDef | None:
    """The parsed definition of ``node_type``, or None when /object_info does not know it."""
    info = object_info.get(node_type)
    if info is None:
        return None
    specs = _ordered_inputs(info)
    outputs = ["COMBO" if isinstance(out, list) else str(out) for out in info.get("output") or []]
    return NodeDef(node_type, info.get("display_name") or node_type, specs, outputs, _widget_layout(specs))


# ----------------------------------------------------------------------------- graph reading


def _type_name(raw: Any) -> str:
    """A slot or link type as a string; lists join with commas, numbers (events) become ``*``."""
    if isinstance(raw, list):
        return ",".join(str(part) for part in raw)
    return raw if isinstance(raw, str) else "*"


def read_graph(workflow: dict[str, Any]) -> Graph:
    """Index a UI-format workflow's nodes and links; raise WorkflowFormatError if it is not one."""
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        raise WorkflowFormatError("workflow: expected a UI-format object with a 'nodes' list")
    if any(not isinstance(node, dict) or "id" not in node or "type" not in node for node in workflow["nodes"]):
        raise WorkflowFormatError("workflow: every node needs an 'id' and a 'type'")
    nodes = {str(node["id"]): node for node in workflow["nodes"]}
    links: dict[int, Link] = {}
    for raw in workflow.get("links") or []:
        if isinstance(raw, dict):
            fields = [raw.get(k) for k in ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")]
        elif isinstance(raw, list) and len(raw) >= 6:
            fields = list(raw[:6])
        else:
            raise WorkflowFormatError(f"workflow: link {raw!r} is neither a 6-element array nor an object")
        link_id, origin_id, origin_slot, target_id, target_slot, link_type = fields
        try:
            links[int(link_id)] = Link(
                int(link_id), str(origin_id), int(origin_slot), str(target_id), int(target_slot), _type_name(link_type)
            )
        except (TypeError, ValueError) as error:
            raise WorkflowFormatError(f"workflow: link {raw!r} has a non-integer id or slot") from error
    return Graph(nodes, links)


def types_match(type_a: str, type_b: str) -> bool:
    """Frontend ``LiteGraph.isValidConnection``: ``*``/empty match all; comma lists need one overlap."""
    if type_a in ("", "*") or type_b in ("", "*"):
        return True
    left = {part.strip().lower() for part in type_a.split(",")}
    right = {part.strip().lower() for part in type_b.split(",")}
    return bool(left & right)


def _output_type(graph: Graph, object_info: dict[str, Any], node_id: str, slot: int) -> str:
    """The declared type of a node's output slot (from /object_info, else as saved)."""
    node = graph.nodes[node_id]
    definition = node_def(object_info, node["type"])
    if definition is not None and slot < len(definition.outputs):
        return definition.outputs[slot]
    outputs = node.get("outputs") or []
    return _type_name(outputs[slot].get("type")) if slot < len(outputs) else "*"


def _input_name(entry: dict[str, Any]) -> str:
    """The API name of a saved input: its widget's name for widget inputs, else its own name."""
    widget = entry.get("widget")
    return widget["name"] if isinstance(widget, dict) and "name" in widget else entry.get("name", "")


def _input_type(graph: Graph, object_info: dict[str, Any], node_id: str, slot: int) -> str:
    """The declared type of a node's input slot (from /object_info, else as saved)."""
    node = graph.nodes[node_id]
    entry = graph.input_at(node_id, slot) or {}
    definition = node_def(object_info, node["type"])
    if definition is not None and _input_name(entry) in definition.inputs:
        return definition.inputs[_input_name(entry)].type
    return _type_name(entry.get("type", "*"))


# ----------------------------------------------------------------------------- link resolution


def _bypass_input_index(graph: Graph, object_info: dict[str, Any], node_id: str, slot: int, want: str) -> int:
    """ExecutableNodeDTO#getBypassSlotIndex: which input a bypassed node passes to output ``slot``."""
    inputs = graph.nodes[node_id].get("inputs") or []
    if not inputs:
        return -1
    if want in ("", "*"):
        return slot if slot < len(inputs) else 0
    out_type = _output_type(graph, object_info, node_id, slot)
    in_types = [_input_type(graph, object_info, node_id, i) for i in range(len(inputs))]
    if slot < len(inputs) and types_match(in_types[slot], out_type) and types_match(in_types[slot], want):
        return slot
    if want in in_types:
        return in_types.index(want)
    return next(
        (i for i, t in enumerate(in_types) if types_match(t, out_type) and types_match(t, want)), -1
    )


def resolve_input(
    graph: Graph, object_info: dict[str, Any], node_id: str, slot: int,
    want: str | None = None, visited: frozenset[str] = frozenset(),
) -> Source | None:
    """Follow the link into ``node_id``'s input ``slot`` through Reroutes and bypassed nodes.

    Returns None when nothing usable is connected (no link, an unconnected Reroute, or a bypassed
    node without a matching input). A muted origin is returned as is; conversion drops it later.
    Raises WorkflowFormatError for dangling links and reroute/bypass cycles.
    """
    key = f"{node_id}[I]{slot}"
    if key in visited:
        raise WorkflowFormatError(f"node {node_id}: cycle while resolving input {slot} through Reroute/bypass")
    entry = graph.input_at(node_id, slot)
    if entry is None or entry.get("link") is None:
        return None
    link = graph.links.get(int(entry["link"]))
    if link is None:
        raise WorkflowFormatError(
            f"node {node_id}: input {_input_name(entry)!r} refers to missing link {entry['link']}"
        )
    if link.origin_id not in graph.nodes:
        raise WorkflowFormatError(f"link {link.id}: origin node {link.origin_id} does not exist")
    want_type = want if want is not None else _input_type(graph, object_info, node_id, slot)
    return _resolve_output(graph, object_info, link.origin_id, link.origin_slot, want_type, visited | {key})


def _resolve_output(
    graph: Graph, object_info: dict[str, Any], node_id: str, slot: int, want: str, visited: frozenset[str]
) -> Source | None:
    """ExecutableNodeDTO.resolveOutput: the real output (or constant) behind ``node_id``'s output."""
    key = f"{node_id}[O]{slot}"
    if key in visited:
        raise WorkflowFormatError(f"node {node_id}: cycle while resolving output {slot} through Reroute/bypass")
    visited = visited | {key}
    node = graph.nodes[node_id]
    if node.get("mode") == MODE_BYPASS:
        index = _bypass_input_index(graph, object_info, node_id, slot, want)
        return None if index < 0 else resolve_input(graph, object_info, node_id, index, None, visited)
    if node["type"] == "PrimitiveNode":
        values = node.get("widgets_values") or []
        return Source(value=values[0]) if values else None
    if node["type"] in FRONTEND_ONLY_TYPES:
        has_input = graph.input_at(node_id, slot) is not None
        return resolve_input(graph, object_info, node_id, slot, want, visited) if has_input else None
    return Source(node_id=node_id, slot=slot)


# ----------------------------------------------------------------------------- widget values


def widget_values(node: dict[str, Any], definition: NodeDef) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """Split a node's saved ``widgets_values`` into input values by name and UI-only extras.

    A dict ``widgets_values`` is read by widget name (extras are then absent).
    """
    saved = node.get("widgets_values")
    values: dict[str, Any] = {}
    extras: dict[tuple[str, str], Any] = {}
    if isinstance(saved, dict):
        values = {name: saved[name] for name, spec in definition.inputs.items() if spec.is_widget and name in saved}
        return values, extras
    saved = saved or []
    for position, slot in enumerate(definition.widget_layout or []):
        if position >= len(saved):
            break
        if slot.kind == "value":
            values[slot.name] = saved[position]
        else:
            extras[(slot.name, slot.kind)] = saved[position]
    return values, extras


def widget_default(spec: InputSpec) -> Any:
    """The value a new frontend widget starts with when nothing was saved for it."""
    if "default" in spec.options:
        return spec.options["default"]
    if spec.type == "COMBO":
        return spec.choices[0] if spec.choices else None
    return {"INT": 0, "FLOAT": 0.0, "BOOLEAN": False, "STRING": ""}.get(spec.type)


def is_file_name(value: Any) -> bool:
    """True for a combo value that names a model or input file (which depends on the install)."""
    return isinstance(value, str) and value.lower().endswith(FILE_SUFFIXES)


def value_errors(spec: InputSpec, value: Any, check_files: bool = False) -> list[str]:
    """Problems with one widget value against its spec: kind, combo choices, min/max.

    File names are checked against the choices only with ``check_files``: a snapshot lists the
    files of the machine that wrote it, not those a user will have.
    """
    if spec.type == "COMBO":
        if spec.choices and value not in spec.choices and (check_files or not is_file_name(value)):
            return [f"{spec.name} {value!r} is not one of its options"]
        return []
    if spec.type in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{spec.name} {value!r} is not a number"]
        if spec.type == "INT" and not float(value).is_integer():
            return [f"{spec.name} {value!r} is not an integer"]
        if "min" in spec.options and value < spec.options["min"]:
            return [f"{spec.name} {value!r} is below min {spec.options['min']}"]
        if "max" in spec.options and value > spec.options["max"]:
            return [f"{spec.name} {value!r} is above max {spec.options['max']}"]
        return []
    expected = {"BOOLEAN": bool, "STRING": str}.get(spec.type)
    if expected is not None and not isinstance(value, expected):
        return [f"{spec.name} {value!r} is not a {spec.type}"]
    return []


# ----------------------------------------------------------------------------- checking


def check_workflow(workflow: dict[str, Any], object_info: dict[str, Any], *, check_files: bool = False) -> list[str]:
    """Check a UI-format workflow against /object_info; return readable errors (empty = valid).

    Covers unknown node types, input names, dangling links and slots, link types (link vs
    output vs input, ``*`` matching all, through Reroute chains), required inputs with no link or
    value (including links that a muted or unmatched bypassed node drops), ``widgets_values``
    length, combo choices, min/max, control modes, and PrimitiveNode values against their targets.
    Combo values that are file names (checkpoints, LoRAs, input images) are checked against the
    snapshot's lists only with ``check_files=True``.
    """
    graph = read_graph(workflow)
    errors: list[str] = []
    try:
        _dependency_order(graph)
    except WorkflowFormatError as error:
        errors.append(str(error))
    for link in graph.links.values():
        errors.extend(_link_errors(graph, object_info, link))
    for node_id, node in graph.nodes.items():
        if node["type"] in FRONTEND_ONLY_TYPES:
            errors.extend(_frontend_node_errors(graph, object_info, node_id, check_files))
            continue
        definition = node_def(object_info, node["type"])
        if definition is None:
            errors.append(f"{_label(node)}: unknown node type {node['type']!r}{_unknown_hint(workflow, node)}")
            continue
        errors.extend(_node_errors(graph, object_info, node_id, definition, check_files))
    return errors


def _label(node: dict[str, Any]) -> str:
    """``node <id> (<type>)`` for messages."""
    return f"node {node.get('id')} ({node.get('type')})"


def _unknown_hint(workflow: dict[str, Any], node: dict[str, Any]) -> str:
    """Explain an unknown type that is a subgraph or group node, which this module does not expand."""
    subgraphs = (workflow.get("definitions") or {}).get("subgraphs") or []
    if any(sub.get("id") == node["type"] for sub in subgraphs):
        return " (a subgraph; not supported by this checker)"
    if node["type"].startswith("workflow>") or node["type"].startswith("workflow/"):
        return " (a group node; not supported by this checker)"
    return ""


def _link_errors(graph: Graph, object_info: dict[str, Any], link: Link) -> list[str]:
    """Dangling ends, slot ranges, input bookkeeping and type agreement of one link."""
    where = (
        f"link {link.id} (node {link.origin_id} slot {link.origin_slot}"
        f" -> node {link.target_id} slot {link.target_slot})"
    )
    for end in (link.origin_id, link.target_id):
        if end not in graph.nodes:
            return [f"{where}: node {end} does not exist"]
    origin, target = graph.nodes[link.origin_id], graph.nodes[link.target_id]
    n_outputs = _output_count(object_info, origin)
    if n_outputs is not None and not 0 <= link.origin_slot < n_outputs:
        return [f"{where}: {_label(origin)} has no output slot {link.origin_slot}"]
    entry = graph.input_at(link.target_id, link.target_slot)
    if entry is None:
        return [f"{where}: {_label(target)} has no input slot {link.target_slot}"]
    if entry.get("link") != link.id:
        return [f"{where}: input {_input_name(entry)!r} of {_label(target)} holds link {entry.get('link')}"]
    if any(n["type"] not in FRONTEND_ONLY_TYPES and node_def(object_info, n["type"]) is None for n in (origin, target)):
        return []  # unknown types are reported per node
    out_type = _real_output_type(graph, object_info, link.origin_id, link.origin_slot)
    in_type = (
        "*" if target["type"] in FRONTEND_ONLY_TYPES
        else _input_type(graph, object_info, link.target_id, link.target_slot)
    )
    name = _input_name(entry)
    if not types_match(out_type, in_type):
        return [f"{where}: output type {out_type} does not fit input {name!r} of type {in_type}"]
    if not (types_match(link.type, out_type) and types_match(link.type, in_type)):
        return [f"{where}: link type {link.type} disagrees with output type {out_type} / input {name!r} type {in_type}"]
    return []


def _output_count(object_info: dict[str, Any], node: dict[str, Any]) -> int | None:
    """How many outputs a node type has, or None when unknown."""
    if node["type"] in ("Reroute", "PrimitiveNode"):
        return 1
    if node["type"] in ("Note", "MarkdownNote"):
        return 0
    definition = node_def(object_info, node["type"])
    return None if definition is None else len(definition.outputs)


def _real_output_type(graph: Graph, object_info: dict[str, Any], node_id: str, slot: int) -> str:
    """An output's type, looking through Reroute chains to the real origin (``*`` if none)."""
    seen: set[str] = set()
    while graph.nodes[node_id]["type"] == "Reroute":
        if node_id in seen:
            return "*"
        seen.add(node_id)
        entry = graph.input_at(node_id, 0)
        link = graph.links.get(entry.get("link")) if entry and entry.get("link") is not None else None
        if link is None or link.origin_id not in graph.nodes:
            return "*"
        node_id, slot = link.origin_id, link.origin_slot
    if graph.nodes[node_id]["type"] == "PrimitiveNode":
        outputs = graph.nodes[node_id].get("outputs") or []
        return _type_name(outputs[0].get("type")) if outputs else "*"
    return _output_type(graph, object_info, node_id, slot)


def _frontend_node_errors(graph: Graph, object_info: dict[str, Any], node_id: str, check_files: bool) -> list[str]:
    """A Reroute's input link must exist; PrimitiveNode values must suit every widget they feed.

    Reroute loops are link cycles, which check_workflow reports once for the whole graph.
    """
    node = graph.nodes[node_id]
    errors: list[str] = []
    entry = graph.input_at(node_id, 0)
    if entry is not None and entry.get("link") is not None and int(entry["link"]) not in graph.links:
        errors.append(f"{_label(node)}: input refers to missing link {entry['link']}")
    if node["type"] != "PrimitiveNode":
        return errors
    values = node.get("widgets_values") or []
    for link in graph.links.values():
        if link.origin_id != node_id or link.target_id not in graph.nodes:
            continue
        target = graph.nodes[link.target_id]
        entry = graph.input_at(link.target_id, link.target_slot) or {}
        definition = node_def(object_info, target["type"])
        if definition is None or target["type"] in FRONTEND_ONLY_TYPES:
            continue
        spec = definition.inputs.get(_input_name(entry))
        if spec is None or not spec.is_widget or "widget" not in entry:
            errors.append(f"{_label(node)}: feeds {_label(target)} input {_input_name(entry)!r}, which is not a widget")
        elif not values:
            errors.append(f"{_label(node)}: has no saved value")
        else:
            problems = value_errors(spec, values[0], check_files)
            errors.extend(f"{_label(node)}: value for {_label(target)}: {msg}" for msg in problems)
    return errors


def _node_errors(
    graph: Graph, object_info: dict[str, Any], node_id: str, definition: NodeDef, check_files: bool
) -> list[str]:
    """Input names, required inputs, widget count, widget values and dropped links of one real node."""
    node = graph.nodes[node_id]
    label = _label(node)
    errors: list[str] = []
    linked: set[str] = set()
    for slot, entry in enumerate(node.get("inputs") or []):
        name = _input_name(entry)
        spec = definition.inputs.get(name)
        if spec is None:
            errors.append(f"{label}: input {name!r} does not exist on {definition.type}")
            continue
        if "widget" in entry and not spec.is_widget:
            errors.append(f"{label}: input {name!r} is marked as a widget but {definition.type} has it as a socket")
        if entry.get("link") is None:
            continue
        linked.add(name)
        if int(entry["link"]) not in graph.links:
            errors.append(f"{label}: input {name!r} refers to missing link {entry['link']}")
            continue
        errors.extend(_dropped_link_errors(graph, object_info, node_id, slot, spec))
    values, extras = widget_values(node, definition)
    if node.get("mode") not in (MODE_MUTED, MODE_BYPASS):
        errors.extend(_missing_required_errors(node, definition, linked, values))
    errors.extend(_widget_count_errors(node, definition))
    for name, value in values.items():
        if name not in linked:
            errors.extend(f"{label}: {msg}" for msg in value_errors(definition.inputs[name], value, check_files))
    for (name, kind), value in extras.items():
        if kind != "control_after_generate":
            continue
        modes = COMBO_CONTROL_MODES if definition.inputs[name].type == "COMBO" else CONTROL_MODES
        if value not in modes:
            errors.append(f"{label}: control_after_generate for {name} is {value!r}, expected one of {list(modes)}")
    return errors


def _missing_required_errors(
    node: dict[str, Any], definition: NodeDef, linked: set[str], values: dict[str, Any]
) -> list[str]:
    """Required sockets without a link, and required widgets with neither a link nor a value."""
    values_known = definition.widget_layout is not None or isinstance(node.get("widgets_values"), dict)
    errors: list[str] = []
    for name, spec in definition.inputs.items():
        if not spec.required or name in linked:
            continue
        if not spec.is_widget:
            errors.append(f"{_label(node)}: required input {name!r} is not connected")
        elif values_known and name not in values:
            errors.append(f"{_label(node)}: required input {name!r} has no link and no widget value")
    return errors


def _dropped_link_errors(
    graph: Graph, object_info: dict[str, Any], node_id: str, slot: int, spec: InputSpec
) -> list[str]:
    """A required input whose link vanishes from the API prompt (muted origin, bypass mismatch)."""
    node = graph.nodes[node_id]
    if node.get("mode") in (MODE_MUTED, MODE_BYPASS) or not spec.required:
        return []
    try:
        source = resolve_input(graph, object_info, node_id, slot)
    except WorkflowFormatError:
        return []  # reported by the link checks
    if source is None and not spec.is_widget:
        return [
            f"{_label(node)}: required input {spec.name!r} resolves to nothing"
            " (unconnected Reroute or bypassed node without a matching input)"
        ]
    if source is not None and not source.is_value and graph.nodes[source.node_id].get("mode") == MODE_MUTED:
        return [f"{_label(node)}: required input {spec.name!r} comes from muted {_label(graph.nodes[source.node_id])}"]
    return []


def _widget_count_errors(node: dict[str, Any], definition: NodeDef) -> list[str]:
    """``widgets_values`` must be a list with exactly one entry per widget position.

    A name-keyed object is read by recent frontends only; those of the ComfyUI 0.3 line restore
    widgets by position, so a shipped workflow should use a list.
    """
    saved = node.get("widgets_values")
    if isinstance(saved, dict):
        return [f"{_label(node)}: widgets_values is an object; write a list (frontends restore widgets by position)"]
    if definition.widget_layout is None:
        return []
    expected = [slot.label for slot in definition.widget_layout]
    count = len(saved or [])
    if count == len(expected):
        return []
    return [f"{_label(node)}: widgets_values has {count} values, expected {len(expected)} ({', '.join(expected)})"]


# ----------------------------------------------------------------------------- conversion


def workflow_to_api(workflow: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    """Convert a UI-format workflow to the API prompt, as the frontend's ``graphToPrompt`` does.

    Nodes come out in a dependency order as ``{"<id>": {"inputs", "class_type", "_meta": {"title"}}}``:
    widget values by name (UI-only extras dropped, list values wrapped as ``{"__value__": [...]}``),
    then links as ``[str(origin_id), origin_slot]`` after Reroute/bypass resolution. Muted,
    bypassed and frontend-only nodes are left out, and inputs linked to left-out nodes deleted.
    Raises WorkflowFormatError for an active node of unknown type or a dangling link.
    """
    graph = read_graph(workflow)
    prompt: dict[str, Any] = {}
    for node_id in _dependency_order(graph):
        node = graph.nodes[node_id]
        if node["type"] in FRONTEND_ONLY_TYPES or node.get("mode") in (MODE_MUTED, MODE_BYPASS):
            continue
        definition = node_def(object_info, node["type"])
        if definition is None:
            raise WorkflowFormatError(f"{_label(node)}: unknown node type; run check_workflow for details")
        prompt[node_id] = {
            "inputs": _api_inputs(graph, object_info, node_id, definition),
            "class_type": node["type"],
            "_meta": {"title": node.get("title") or definition.display_name},
        }
    for entry in prompt.values():
        inputs = entry["inputs"]
        for name in [n for n, v in inputs.items() if isinstance(v, list) and len(v) == 2 and v[0] not in prompt]:
            del inputs[name]
    return prompt


def _api_inputs(graph: Graph, object_info: dict[str, Any], node_id: str, definition: NodeDef) -> dict[str, Any]:
    """One node's API inputs: widget values first, then resolved links overriding them."""
    node = graph.nodes[node_id]
    if definition.widget_layout is None and not isinstance(node.get("widgets_values"), dict):
        raise WorkflowFormatError(
            f"{_label(node)}: its widgets come from a frontend extension; cannot map widgets_values"
        )
    values, _ = widget_values(node, definition)
    inputs: dict[str, Any] = {}
    for name, spec in definition.inputs.items():
        if spec.is_widget:
            value = values[name] if name in values else widget_default(spec)
            inputs[name] = {"__value__": value} if isinstance(value, list) else value
    for slot, entry in enumerate(node.get("inputs") or []):
        source = resolve_input(graph, object_info, node_id, slot)
        if source is None:
            continue
        name = _input_name(entry)
        if source.is_value:
            inputs[name] = {"__value__": source.value} if isinstance(source.value, list) else source.value
        else:
            inputs[name] = [source.node_id, source.slot]
    return inputs


def _dependency_order(graph: Graph) -> list[str]:
    """Node ids so that every link's origin comes before its target (file order breaks ties)."""
    pending = {node_id: 0 for node_id in graph.nodes}
    consumers: dict[str, list[str]] = {node_id: [] for node_id in graph.nodes}
    for link in graph.links.values():
        if link.origin_id in graph.nodes and link.target_id in graph.nodes:
            pending[link.target_id] += 1
            consumers[link.origin_id].append(link.target_id)
    ready = [node_id for node_id, count in pending.items() if count == 0]
    order: list[str] = []
    while ready:
        node_id = ready.pop(0)
        order.append(node_id)
        for target in consumers[node_id]:
            pending[target] -= 1
            if pending[target] == 0:
                ready.append(target)
    if len(order) < len(graph.nodes):
        stuck = ", ".join(node_id for node_id in graph.nodes if node_id not in order)
        raise WorkflowFormatError(f"workflow: links form a cycle among or downstream of nodes {stuck}")
    return order
