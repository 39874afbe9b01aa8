"""Text2Graph (knowledge-graph garment paper, kg-garment-synthesis.txt): prompt -> (entity, relation,
value) triples -> a text for CLIP, either the paper's linearised "triple prompt" or a bound,
per-entity encoding plan. Pure Python/torch; no ComfyUI import.

- ``schema``: the triple type, the relations, JSON in/out with errors that say where;
- ``lexicon``: the fashion vocabulary (garments, parts, colours, materials, patterns, styles);
- ``catalogue_vocabulary`` (generated from a catalogue table and the XKCD colour survey) and
  ``catalogue_words`` (curated parts, materials, finishes): the words of real shop descriptions;
- ``parser``: the default deterministic offline parser (``parse_prompt``);
- ``llm``: the optional local causal-LM backend that falls back to the parser;
- ``linearize``: the paper's triple prompt;
- ``binding``: per-entity phrases and how their embeddings are combined (bound encoding);
- ``graph_image``: a picture of the graph for previews.
"""

from .binding import EntityPhrase, bound_phrases, combine_bound_embeddings
from .linearize import linearize_triples
from .llm import LLMTripleExtractor
from .parser import ParserConfig, ParseResult, parse_prompt
from .schema import (
    PAPER_RELATIONS,
    RELATIONS,
    Triple,
    TripleSchemaError,
    triples_from_json,
    triples_to_json,
    validate_triples,
)

__all__ = [
    "PAPER_RELATIONS",
    "RELATIONS",
    "EntityPhrase",
    "LLMTripleExtractor",
    "ParseResult",
    "ParserConfig",
    "Triple",
    "TripleSchemaError",
    "bound_phrases",
    "combine_bound_embeddings",
    "linearize_triples",
    "parse_prompt",
    "triples_from_json",
    "triples_to_json",
    "validate_triples",
]
