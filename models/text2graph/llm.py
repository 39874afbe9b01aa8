"""Optional Text2Graph backend: a local causal language model (the paper: "Use LLM to ... convert
natural language into semantic triples"), loaded from a user-supplied folder with transformers.

The model is asked for a JSON list of [entity, relation, value]; the answer is accepted only when
it parses, passes the triple schema (``schema.validate_triples``) and every entity and value occurs
in the prompt (no invented garments or colours). Otherwise the default parser's result is returned
with ``fallback_reason`` saying why, so a small or confused model never breaks a graph.
Nothing is downloaded: the folder must hold the model and its tokenizer
(``local_files_only=True``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import AtelierError
from .linearize import linearize_triples
from .parser import ParserConfig, ParseResult, parse_prompt
from .schema import RELATIONS, Triple, TripleSchemaError, validate_triples
from .tokens import split_words

logger = logging.getLogger("atelier.text2graph.llm")

PAPER_EXAMPLE_PROMPT = "a navy blue jacket with a red straight-point collar and a blue belted waist."
PAPER_EXAMPLE_TRIPLES: tuple[Triple, ...] = (
    Triple("jacket", "has-color", "navy blue"), Triple("jacket", "has-feature", "collar"),
    Triple("collar", "has-style", "straight-point"), Triple("collar", "has-color", "red"),
    Triple("jacket", "has-feature", "waist"), Triple("waist", "has-color", "blue"),
)
JSON_LIST = re.compile(r"\[\s*\[.*?\]\s*\]", re.DOTALL)


class LanguageModelPathError(AtelierError, FileNotFoundError):
    """The language-model folder does not exist or holds no loadable model."""


def instruction(prompt: str) -> str:
    """The text given to the language model: the task, the relations, the paper's example, the prompt."""
    example = json.dumps([list(triple) for triple in PAPER_EXAMPLE_TRIPLES])
    return (
        "Convert the garment description into knowledge-graph triples [entity, relation, value]. "
        f"Relations: {', '.join(RELATIONS)}. Answer with a JSON list only.\n"
        f"Description: {PAPER_EXAMPLE_PROMPT}\nTriples: {example}\n"
        f"Description: {prompt.strip()}\nTriples:"
    )


def answer_to_triples(answer: str, prompt: str) -> list[Triple]:
    """The first JSON list of triples in ``answer``, validated and grounded in ``prompt``.

    Raises TripleSchemaError naming what is wrong (no JSON, bad JSON, schema, ungrounded word).
    """
    match = JSON_LIST.search(answer)
    if match is None:
        raise TripleSchemaError(f"language model answer: no JSON list of triples found in {answer[:80]!r}")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as error:
        raise TripleSchemaError(f"language model answer: invalid JSON at column {error.colno}: {error.msg}") from error
    triples = validate_triples(data, "language model answer")
    if not triples:
        raise TripleSchemaError("language model answer: an empty list of triples")
    written = " " + " ".join(split_words(prompt)) + " "
    for index, (entity, _, value) in enumerate(triples):
        for name, field in (("entity", entity), ("value", value)):
            words = " ".join(split_words(field))
            if f" {words} " not in written:
                raise TripleSchemaError(f"language model answer: triple {index} {name} {field!r} is not in the prompt")
    return triples


class LLMTripleExtractor:
    """Prompt -> triples with a language model, falling back to the default parser.

    Args:
        generate: maps the instruction text to the model's continuation (``from_pretrained`` builds
            one from a transformers causal LM; tests pass a plain function).
        fallback: the default parser's options, used when the answer is rejected.
    """

    def __init__(self, generate: Callable[[str], str], fallback: ParserConfig | None = None) -> None:
        self.generate = generate
        self.fallback = fallback if fallback is not None else ParserConfig()

    @classmethod
    def from_pretrained(cls, path: str | Path, max_new_tokens: int = 256,
                        fallback: ParserConfig | None = None) -> LLMTripleExtractor:
        """Load a causal LM and its tokenizer from a local folder; greedy decoding (deterministic)."""
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise LanguageModelPathError(f"llm_path {str(folder)!r} is not a folder holding a transformers model")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
        except (OSError, ValueError) as error:
            raise LanguageModelPathError(f"llm_path {str(folder)!r}: could not load a causal LM: {error}") from error

        def generate(text: str) -> str:
            inputs = tokenizer(text, return_tensors="pt")
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            with torch.no_grad():
                output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
            return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

        return cls(generate, fallback)

    def parse(self, prompt: str) -> ParseResult:
        """Triples from the language model, or the default parser's with ``fallback_reason`` set."""
        answer = self.generate(instruction(prompt))
        try:
            triples = answer_to_triples(answer, prompt)
        except TripleSchemaError as error:
            logger.warning("local LLM answer rejected, using the default parser: %s", error)
            result = parse_prompt(prompt, self.fallback)
            return ParseResult(result.triples, result.unknown_words, result.corrections, result.negated,
                               backend="rules", fallback_reason=str(error))
        logger.debug("local LLM triples: %s", linearize_triples(triples))
        return ParseResult(triples, backend="llm")
