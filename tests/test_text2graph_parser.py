"""Text2Graph default parser: the paper's example prompts, toy-world captions against their ground
truth, and the paper's stated limitations (noisy text, long or ambiguous prompts) as behaviour."""

import pytest
from atelier.models.text2graph import ParserConfig, Triple, parse_prompt
from atelier.models.text2graph.llm import PAPER_EXAMPLE_PROMPT, PAPER_EXAMPLE_TRIPLES
from atelier.models.text2graph.parser import ParserConfigError
from atelier.train.metrics import corpus_triple_scores, triple_scores
from atelier.train.text2graph.paper_examples import PAPER_EXAMPLES
from atelier.train.toyworld import ToyWorld, ToyWorldConfig, outfit_caption

T = Triple
PAPER_BLUE_SHIRT = (PAPER_EXAMPLES[2].prompt, list(PAPER_EXAMPLES[2].triples))
PAPER_BLACK_SHIRT = (PAPER_EXAMPLES[3].prompt, list(PAPER_EXAMPLES[3].triples))


def triples(text, **options):
    return parse_prompt(text, ParserConfig(**options)).triples


@pytest.mark.parametrize("prompt", [PAPER_EXAMPLE_PROMPT, PAPER_EXAMPLES[1].prompt])
def test_paper_example_finds_every_paper_triple_plus_the_belted_style_it_leaves_out(prompt):
    found = triples(prompt)
    assert set(PAPER_EXAMPLE_TRIPLES) <= set(found)
    assert set(found) - set(PAPER_EXAMPLE_TRIPLES) == {T("waist", "has-style", "belted")}
    assert found[:4] == list(PAPER_EXAMPLE_TRIPLES[:4])  # the paper's order: colour, feature, style, colour
    assert triple_scores(found, PAPER_EXAMPLE_TRIPLES).recall == 1.0


@pytest.mark.parametrize("prompt,expected", [PAPER_BLUE_SHIRT, PAPER_BLACK_SHIRT], ids=["blue_shirt", "black_shirt"])
def test_paper_result_prompts_parse_to_their_annotation(prompt, expected):
    assert triples(prompt) == expected


def test_red_goes_to_the_collar_not_to_the_jacket():
    found = triples("a navy blue jacket with a red straight-point collar")
    assert T("collar", "has-color", "red") in found
    assert not any(t.entity == "jacket" and t.value == "red" for t in found)


def test_toy_world_people_captions_parse_to_their_ground_truth():
    world = ToyWorld(ToyWorldConfig(height=64, width=64))
    truth, found = [], []
    for index in range(150):
        caption, expected = outfit_caption(world.design_person(index).garments)
        truth.append(expected)
        found.append(triples(caption, entity_names="plain"))
    scores = corpus_triple_scores(found, truth)
    assert scores.f1 >= 0.98, scores
    assert scores.expected > 1500


def test_toy_world_outfit_captions_parse_to_their_ground_truth():
    world = ToyWorld(ToyWorldConfig(height=64, width=64))
    designs = [outfit_caption(world.design_outfit(index).items, lead="") for index in range(100)]
    scores = corpus_triple_scores([triples(c, entity_names="plain") for c, _ in designs], [t for _, t in designs])
    assert scores.f1 >= 0.98, scores


def test_fine_relations_split_fit_and_length_from_style():
    found = triples("a loose midi dress with long sleeves", relation_set="fine")
    assert {T("dress", "has-fit", "loose"), T("dress", "has-length", "midi"), T("sleeves", "has-length", "long")} <= set(found)
    assert T("dress", "has-style", "loose") in triples("a loose midi dress", relation_set="paper")


def test_multi_word_colours_materials_and_shades():
    found = triples("an olive green faux leather jacket with a light blue collar and sky blue sleeves")
    assert {T("jacket", "has-color", "olive green"), T("jacket", "has-material", "faux leather"),
            T("collar", "has-color", "light blue"), T("sleeves", "has-color", "sky blue")} <= set(found)


# --- noisy text (the paper's first limitation) ------------------------------------------------


def test_noise_in_case_punctuation_and_spacing_does_not_change_the_graph():
    clean = triples("a navy blue jacket with a red collar")
    assert triples("  A   NAVY-BLUE   Jacket!!! with a RED collar ;; ") == clean


def test_misspellings_close_to_a_lexicon_word_are_corrected_and_reported():
    result = parse_prompt("a navy blue jackett with a red coller")
    assert result.triples == triples("a navy blue jacket with a red collar")
    assert result.corrections == (("jackett", "jacket"), ("coller", "collar"))


def test_misspellings_are_kept_as_written_when_fuzzy_is_off():
    result = parse_prompt("a navy blue jackett with a red coller", ParserConfig(fuzzy=False))
    assert result.triples == [] and set(result.unknown_words) == {"jackett", "coller"}


def test_short_typos_are_not_guessed_and_their_word_is_lost():
    """Documented limitation: "nvy" (3 letters) is not corrected, so only "blue" survives."""
    result = parse_prompt("a nvy blue jacket")
    assert result.triples == [T("jacket", "has-color", "blue")]
    assert result.unknown_words == ("nvy",)


def test_common_words_are_not_turned_into_fashion_words():
    result = parse_prompt("while she stands there, a white shirt")
    assert result.triples == [T("shirt", "has-color", "white")]
    assert result.corrections == ()


def test_text_without_fashion_words_gives_an_empty_graph():
    result = parse_prompt("🙂 hello world 1234")
    assert result.triples == [] and "hello" in result.unknown_words


# --- ambiguous prompts (the paper's second limitation) -----------------------------------------


def test_a_pattern_shared_by_two_garments_is_qualified_in_auto_and_ambiguous_in_plain():
    prompt = "a white shirt with red checks and blue shorts with green checks"
    auto = triples(prompt)
    assert {T("shirt checks", "has-color", "red"), T("shorts checks", "has-color", "green")} <= set(auto)
    plain = triples(prompt, entity_names="plain")
    assert {T("checks", "has-color", "red"), T("checks", "has-color", "green")} <= set(plain)


def test_qualified_names_always_name_the_garment():
    assert T("jacket collar", "has-color", "red") in triples("a jacket with a red collar", entity_names="qualified")


def test_a_second_garment_of_the_same_kind_is_numbered_and_the_refers_back():
    found = triples("a red shirt and the shirt has a blue collar, and a green shirt")
    assert found == [T("shirt", "has-color", "red"), T("shirt", "has-feature", "collar"),
                     T("collar", "has-color", "blue"), T("shirt 2", "has-color", "green")]


def test_modifiers_after_their_noun_go_to_the_last_head():
    assert triples("a jacket in navy blue with a collar, red") == [
        T("jacket", "has-color", "navy blue"), T("jacket", "has-feature", "collar"), T("collar", "has-color", "red"),
    ]


def test_coordinated_colours_both_reach_the_noun():
    assert triples("a red and white striped shirt") == [
        T("shirt", "has-color", "red"), T("shirt", "has-color", "white"), T("shirt", "has-pattern", "stripes"),
    ]


def test_negated_phrases_give_no_triple_and_are_listed():
    result = parse_prompt("a grey coat without a hood")
    assert result.triples == [T("coat", "has-color", "grey")]
    assert result.negated == ("hood",)


def test_a_part_before_any_garment_stands_alone():
    assert triples("red collar") == [T("collar", "has-color", "red")]


# --- long prompts --------------------------------------------------------------------------------


def test_long_prompt_keeps_every_attribute_on_its_own_garment():
    prompt = ("a loose navy blue cotton shirt with white stripes, a red straight-point collar and long sleeves, "
              "slim black denim jeans with a brown belted waist, white canvas sneakers, a mustard yellow wool "
              "sweater with a round neck, a purple leather shoulder bag with a pink logo patch and green suede boots")
    found = set(triples(prompt))
    assert len(found) >= 25
    for garment, colour in [("shirt", "navy blue"), ("jeans", "black"), ("sneakers", "white"),
                            ("sweater", "mustard yellow"), ("shoulder bag", "purple"), ("boots", "green")]:
        assert {t.value for t in found if t.entity == garment and t.relation == "has-color"} == {colour}
    assert T("collar", "has-color", "red") in found and T("waist", "has-color", "brown") in found
    assert T("jeans", "has-feature", "waist") in found and T("shirt", "has-feature", "collar") in found


def test_parser_is_deterministic():
    prompt = "a loose red silk blouse with a rounded collar and a teal belted waist"
    assert all(parse_prompt(prompt) == parse_prompt(prompt) for _ in range(3))


def test_parser_config_refuses_unknown_values_by_name():
    with pytest.raises(ParserConfigError, match="entity_names"):
        ParserConfig(entity_names="short")
    with pytest.raises(ParserConfigError, match="relation_set"):
        ParserConfig(relation_set="rdf")
