"""Bound encoding: one phrase per entity, each encoded in its own window and concatenated along
tokens, so no attribute of one entity can reach another entity's tokens; linearised and plain
prompts do not have that property. Uses the tiny offline CLIP text encoder."""

import pytest
import torch
from atelier.models.text2graph import (
    Triple,
    bound_phrases,
    combine_bound_embeddings,
    parse_prompt,
)
from atelier.models.text2graph.binding import BoundEncodingError, pad_bound_batch
from atelier.models.text2graph.lexicon import COLORS
from atelier.models.text2graph.llm import PAPER_EXAMPLE_PROMPT
from atelier.train.text2graph.text_encoding import encode_batch
from atelier.train.text2graph.tiny import tiny_text_encoder, tiny_tokenizer
from atelier.train.toyworld import ToyWorld, ToyWorldConfig, outfit_caption


def test_paper_example_becomes_one_phrase_per_entity():
    phrases = bound_phrases(parse_prompt(PAPER_EXAMPLE_PROMPT).triples)
    assert [(p.entity, p.text, p.parent) for p in phrases] == [
        ("jacket", "navy blue jacket", ""),
        ("collar", "red straight-point collar of the jacket", "jacket"),
        ("waist", "blue belted waist of the jacket", "jacket"),
    ]


def test_qualified_entities_and_patterns_read_naturally():
    triples = parse_prompt("a white shirt with red checks and blue shorts with green checks").triples
    assert [p.text for p in bound_phrases(triples)] == [
        "white shirt", "red checks of the shirt", "blue shorts", "green checks of the shorts",
    ]
    assert bound_phrases([Triple("shirt", "has-pattern", "stripes")])[0].text == "shirt with stripes"


def _colours_in(text):
    words = f" {text} "
    found = {colour for colour in COLORS if f" {colour} " in words}
    return {colour for colour in found if not any(colour != other and colour in other for other in found)}


def test_every_phrase_holds_only_its_own_entitys_colours_on_toy_world_captions():
    world = ToyWorld(ToyWorldConfig(height=64, width=64))
    checked = 0
    for index in range(80):
        caption, _ = outfit_caption(world.design_person(index).garments)
        triples = parse_prompt(caption).triples
        for phrase in bound_phrases(triples):
            own = {t.value for t in triples if t.entity == phrase.entity and t.relation == "has-color"}
            assert _colours_in(phrase.text) == own, (caption, phrase)
            checked += 1
    assert checked > 300


def test_combine_concatenates_windows_along_tokens_and_checks_shapes():
    windows = [torch.randn(2, 77, 8) for _ in range(3)]
    combined = combine_bound_embeddings(windows)
    assert combined.shape == (2, 231, 8)
    assert torch.equal(combined[:, 77:154], windows[1])
    with pytest.raises(BoundEncodingError, match="at least one entity"):
        combine_bound_embeddings([])
    with pytest.raises(BoundEncodingError, match=r"entity embedding 1 has shape \(2, 77, 4\)"):
        combine_bound_embeddings([windows[0], torch.randn(2, 77, 4)])


def test_padding_a_bound_batch_appends_empty_prompt_windows():
    empty = torch.zeros(1, 77, 8)
    short, long = torch.ones(1, 77, 8), torch.ones(1, 231, 8)
    batch = pad_bound_batch([short, long], empty)
    assert batch.shape == (2, 231, 8)
    assert torch.equal(batch[0, 77:], torch.zeros(154, 8)) and torch.equal(batch[1], long[0])


@pytest.fixture(scope="module")
def tiny_clip():
    tokenizer = tiny_tokenizer()
    return tokenizer, tiny_text_encoder(len(tokenizer), seed=0).eval()


def _encode(tiny_clip, caption, mode):
    tokenizer, encoder = tiny_clip
    with torch.no_grad():
        return encode_batch(tokenizer, encoder, [caption], [parse_prompt(caption).triples], mode)


def test_the_collar_window_does_not_depend_on_the_jackets_colour_in_bound_mode(tiny_clip):
    navy = _encode(tiny_clip, "a navy blue jacket with a red collar", "bound")
    green = _encode(tiny_clip, "a green jacket with a red collar", "bound")
    assert navy.shape == green.shape == (1, 154, 64)
    assert torch.equal(navy[:, 77:], green[:, 77:])  # "red collar of the jacket", untouched
    assert not torch.equal(navy[:, :77], green[:, :77])


@pytest.mark.parametrize("mode", ["plain", "linearized"])
def test_one_text_lets_the_jackets_colour_reach_the_collar_tokens(tiny_clip, mode):
    navy = _encode(tiny_clip, "a navy blue jacket with a red collar", mode)
    green = _encode(tiny_clip, "a green jacket with a red collar", mode)
    assert navy.shape == (1, 77, 64)
    assert not torch.allclose(navy[:, -10:], green[:, -10:])  # later tokens read the jacket's colour


def test_bound_batches_pad_to_the_longest_sample(tiny_clip):
    tokenizer, encoder = tiny_clip
    captions = ["a red shirt", "a navy blue jacket with a red collar and a blue belted waist"]
    with torch.no_grad():
        batch = encode_batch(tokenizer, encoder, captions, [parse_prompt(c).triples for c in captions], "bound")
        empty = encode_batch(tokenizer, encoder, [""], [[]], "plain")
    assert batch.shape == (2, 231, 64)
    assert torch.allclose(batch[0, 77:154], empty[0], atol=1e-6)


def test_a_long_triple_prompt_is_split_into_77_token_windows_as_comfyui_does(tiny_clip):
    caption = ("a loose navy blue cotton shirt with white stripes, a red straight-point collar and long sleeves, "
               "slim black denim jeans with a brown belted waist and white canvas sneakers")
    linearized = _encode(tiny_clip, caption, "linearized")
    assert linearized.shape[1] % 77 == 0 and linearized.shape[1] >= 154
    assert _encode(tiny_clip, caption, "plain").shape == (1, 77, 64)
