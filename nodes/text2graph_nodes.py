"""Text2Graph nodes (issue 6; the knowledge-graph garment paper): parse a prompt into triples,
encode triples into CONDITIONING with the user's CLIP, and draw the graph for a preview."""

from __future__ import annotations

import logging

import numpy as np
import torch
from comfy_api.latest import io

from ..models.errors import AtelierError
from ..models.text2graph.binding import bound_phrases, combine_bound_embeddings
from ..models.text2graph.graph_image import render_graph
from ..models.text2graph.linearize import linearize_triples
from ..models.text2graph.llm import LLMTripleExtractor
from ..models.text2graph.parser import (
    ENTITY_NAMES,
    RELATION_SETS,
    ParserConfig,
    parse_prompt,
)
from ..models.text2graph.schema import (
    TripleSchemaError,
    triples_from_json,
    triples_to_json,
    validate_triples,
)
from .combo_check import combo_errors

logger = logging.getLogger("atelier.text2graph.nodes")

Triples = io.Custom("ATELIER_TRIPLES")
BACKENDS: tuple[str, ...] = ("rules", "local_llm")
ENCODINGS: tuple[str, ...] = ("bound", "linearized")
CATEGORY = "Atelier/text2graph"


class TriplesInputError(AtelierError, ValueError):
    """The triples given to a node are empty or unusable; the message names the input."""


class Text2GraphParseNode(io.ComfyNode):
    """Prompt -> (entity, relation, value) triples, as TRIPLES and as editable JSON."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierText2GraphParse",
            display_name="Atelier Text2Graph Parse",
            category=CATEGORY,
            description=(
                "Turns a garment prompt into knowledge-graph triples such as (jacket, has-color, navy blue), "
                "(jacket, has-feature, collar), (collar, has-color, red). Offline fashion-lexicon parser by "
                "default; optionally a local language model. Paste edited JSON into edited_json to fix the graph."
            ),
            inputs=[
                io.String.Input("text", multiline=True, default="a navy blue jacket with a red straight-point collar "
                                "and a blue belted waist", tooltip="The garment description to parse."),
                io.Combo.Input("entity_names", options=list(ENTITY_NAMES), default="auto",
                               tooltip="plain: 'collar', as in the paper. qualified: 'shirt collar'. auto: plain "
                               "unless two garments share a part or pattern name (then qualified); a second "
                               "garment of the same kind is numbered ('shirt 2')."),
                io.Combo.Input("relation_set", options=list(RELATION_SETS), default="paper",
                               tooltip="paper: fit and length words are has-style. fine: has-fit and has-length."),
                io.Combo.Input("backend", options=list(BACKENDS), default="rules",
                               tooltip="rules: the offline parser. local_llm: a causal language model from "
                               "llm_path, asked for JSON; an invalid answer falls back to the rules."),
                io.String.Input("llm_path", default="", tooltip="Folder of a local transformers causal LM "
                                "(model + tokenizer). Used only with backend local_llm; nothing is downloaded."),
                io.String.Input("edited_json", multiline=True, default="",
                                tooltip="Leave empty to use the parsed graph. Paste the triples_json output here "
                                "and edit it to override the graph: a JSON list of [entity, relation, value]."),
            ],
            outputs=[
                Triples.Output("triples"),
                io.String.Output("triples_json", tooltip="The graph as JSON, one triple per line."),
                io.String.Output("triple_prompt", tooltip="The paper's linearised triple prompt."),
            ],
        )

    @classmethod
    def validate_inputs(cls, entity_names=None, relation_set=None, backend=None, llm_path=None,
                        edited_json=None) -> bool | str:
        """Unknown combo values, a missing llm_path and bad JSON in edited_json are refused by name."""
        message = combo_errors(entity_names=(entity_names, ENTITY_NAMES), relation_set=(relation_set, RELATION_SETS),
                               backend=(backend, BACKENDS))
        if message:
            return message
        if backend == "local_llm" and llm_path is not None and not llm_path.strip():
            return "'llm_path' is empty; backend local_llm needs the folder of a local causal language model"
        if edited_json and edited_json.strip():
            try:
                triples_from_json(edited_json, "edited_json")
            except TripleSchemaError as error:
                return str(error)
        return True

    @classmethod
    def execute(cls, text, entity_names, relation_set, backend, llm_path, edited_json) -> io.NodeOutput:
        if edited_json.strip():
            triples = triples_from_json(edited_json, "edited_json")
        else:
            config = ParserConfig(entity_names=entity_names, relation_set=relation_set)
            if backend == "local_llm":
                result = LLMTripleExtractor.from_pretrained(llm_path, fallback=config).parse(text)
            else:
                result = parse_prompt(text, config)
            if result.unknown_words:
                logger.info("Text2Graph ignored words it does not know: %s", ", ".join(result.unknown_words))
            triples = result.triples
        return io.NodeOutput(triples, triples_to_json(triples), linearize_triples(triples))


class Text2GraphEncodeNode(io.ComfyNode):
    """TRIPLES + CLIP -> CONDITIONING (the paper's triple prompt, or one bound phrase per entity)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierText2GraphEncode",
            display_name="Atelier Text2Graph Encode",
            category=CATEGORY,
            description=(
                "Encodes knowledge-graph triples with your CLIP into ordinary CONDITIONING for KSampler and "
                "ControlNet. bound: each entity's phrase ('red straight-point collar of the jacket') is encoded "
                "in its own window and the windows are concatenated, so an attribute cannot drift to another "
                "entity. linearized: the paper's '(jacket, has-color, navy blue), ...' text."
            ),
            inputs=[
                io.Clip.Input("clip", tooltip="The CLIP of your SD1.5 checkpoint (LoRA-patched CLIP works too)."),
                Triples.Input("triples", tooltip="Triples from Atelier Text2Graph Parse."),
                io.Combo.Input("mode", options=list(ENCODINGS), default="bound",
                               tooltip="bound: one 77-token window per entity phrase, concatenated. linearized: "
                               "the paper's triple prompt through CLIP as one text."),
            ],
            outputs=[io.Conditioning.Output()],
        )

    @classmethod
    def validate_inputs(cls, mode=None) -> bool | str:
        """ComfyUI 0.3.64 does not check V3 combo values itself; refuse unknown ones by name."""
        return combo_errors(mode=(mode, ENCODINGS)) or True

    @classmethod
    def execute(cls, clip, triples, mode) -> io.NodeOutput:
        triples = validate_triples(triples, "triples")
        if not triples:
            raise TriplesInputError("'triples' is empty: the parser found no garment words; edit the text or edited_json")
        if mode == "linearized":
            tokens = clip.tokenize(linearize_triples(triples))
            windows = max(len(chunks) for chunks in tokens.values())
            if windows > 1:
                logger.warning(
                    "the triple prompt spans %d CLIP windows of 75 tokens; later windows cannot see earlier ones "
                    "(the paper's long-prompt limitation); mode 'bound' keeps each entity in its own window", windows,
                )
            return io.NodeOutput(clip.encode_from_tokens_scheduled(tokens))
        embeddings, pooled = [], []
        for phrase in bound_phrases(triples):
            cond, pooled_output = clip.encode_from_tokens(clip.tokenize(phrase.text), return_pooled=True)
            embeddings.append(cond)  # (1, 77, C) per entity
            pooled.append(pooled_output)
        cond = combine_bound_embeddings(embeddings)  # (1, 77 * k, C)
        extra = {} if pooled[0] is None else {"pooled_output": torch.stack(pooled).mean(dim=0)}
        return io.NodeOutput([[cond, extra]])


class Text2GraphRenderNode(io.ComfyNode):
    """TRIPLES -> IMAGE of the graph, for Preview Image."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AtelierText2GraphRender",
            display_name="Atelier Text2Graph Render",
            category=CATEGORY,
            description="Draws the knowledge graph: garments, their parts and patterns, and attribute values.",
            inputs=[
                Triples.Input("triples"),
                io.Int.Input("width", default=768, min=128, max=4096, step=8, tooltip="Image width in pixels."),
                io.Int.Input("height", default=512, min=128, max=4096, step=8, tooltip="Image height in pixels."),
            ],
            outputs=[io.Image.Output()],
        )

    @classmethod
    def execute(cls, triples, width, height) -> io.NodeOutput:
        picture = render_graph(validate_triples(triples, "triples"), width, height)  # (H, W, 3) uint8
        image = torch.from_numpy(picture.astype(np.float32) / 255.0)[None]  # (1, H, W, 3)
        return io.NodeOutput(image)


NODES: tuple[type[io.ComfyNode], ...] = (Text2GraphParseNode, Text2GraphEncodeNode, Text2GraphRenderNode)
