"""The optional local-LLM backend: JSON answers are validated against the schema and the prompt,
and anything invalid falls back to the default parser. A tiny random GPT-2 is built offline in a
temp dir (no download); fake generators exercise the accepted and rejected answers."""

import json

import pytest
from atelier.models.text2graph import LLMTripleExtractor, Triple, parse_prompt
from atelier.models.text2graph.llm import (
    LanguageModelPathError,
    answer_to_triples,
    instruction,
)
from atelier.models.text2graph.schema import TripleSchemaError

PROMPT = "a blue shirt with brown collar"
GOOD = [["shirt", "has-color", "blue"], ["shirt", "has-feature", "collar"], ["collar", "has-color", "brown"]]


def fixed_answer(answer):
    return LLMTripleExtractor(lambda _instruction: answer)


def test_instruction_asks_for_json_with_the_relations_and_the_paper_example():
    text = instruction(PROMPT)
    assert "JSON" in text and "has-feature" in text and "straight-point" in text and text.endswith(f"{PROMPT}\nTriples:")


def test_a_valid_answer_is_used():
    result = fixed_answer("Sure! " + json.dumps(GOOD) + " hope this helps").parse(PROMPT)
    assert result.backend == "llm" and result.fallback_reason == ""
    assert result.triples == [Triple(*triple) for triple in GOOD]


@pytest.mark.parametrize("answer,reason", [
    ("I cannot do that", "no JSON list"),
    ('[["shirt", "has-colour", "blue"]]', "relation 'has-colour'"),
    ('[["shirt", "has-color", "green"]]', "value 'green' is not in the prompt"),
    ('[["skirt", "has-color", "blue"]]', "entity 'skirt' is not in the prompt"),
    ('[["shirt", "has-color", "blue",]]', "invalid JSON"),
])
def test_an_invalid_answer_falls_back_to_the_parser_with_the_reason(answer, reason):
    result = fixed_answer(answer).parse(PROMPT)
    assert result.backend == "rules" and reason in result.fallback_reason
    assert result.triples == parse_prompt(PROMPT).triples


def test_answers_without_a_triple_are_rejected():
    with pytest.raises(TripleSchemaError, match="no JSON list"):
        answer_to_triples("[]", PROMPT)
    with pytest.raises(TripleSchemaError, match=r"triple 0 is \[\]"):
        answer_to_triples("[[]]", PROMPT)


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(LanguageModelPathError, match="llm_path"):
        LLMTripleExtractor.from_pretrained(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory):
    """A 1-layer random GPT-2 and a byte-level tokenizer saved to a temp dir."""
    import torch
    from atelier.train.text2graph.tiny import byte_symbols
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    folder = tmp_path_factory.mktemp("tiny_gpt2")
    vocab = {symbol: index for index, symbol in enumerate(byte_symbols())}
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=[])
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(vocab), n_positions=2048, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=len(vocab) - 1, eos_token_id=len(vocab) - 1)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def test_a_tiny_random_language_model_loads_offline_and_falls_back(tiny_gpt2_dir):
    extractor = LLMTripleExtractor.from_pretrained(tiny_gpt2_dir, max_new_tokens=12)
    result = extractor.parse(PROMPT)
    assert result.backend == "rules" and result.fallback_reason
    assert result.triples == parse_prompt(PROMPT).triples
    assert extractor.parse(PROMPT) == result  # greedy decoding: deterministic
