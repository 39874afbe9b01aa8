"""Text2Graph on real shop text: the catalogue prompts that gave empty graphs, missed colours,
split one garment in two or bound a modifier to the wrong part, each as behaviour; the real-text
evaluation on a small table; and the vocabulary builder's rules."""

import json

import pytest
from atelier.models.text2graph import LLMTripleExtractor, ParserConfig, Triple, parse_prompt
from atelier.models.text2graph.lexicon import WordKind, parser_entries
from atelier.train.datasets.files import DatasetFormatError
from atelier.train.text2graph import build_vocabulary, real_eval
from atelier.train.text2graph.catalogue import LABELLED_SAMPLE, article_prompt, read_catalogue, read_labelled_sample

T = Triple
TROUSERS = ("dark grey trousers. Trousers in sweatshirt fabric with an elasticated drawstring waist, side pockets, "
            "a back pocket and ribbed hems. Soft brushed inside.")


def triples(text, **options):
    return parse_prompt(text, ParserConfig(**options)).triples


def garments(found):
    return {t.entity for t in found if not any(u.value == t.entity and u.relation == "has-feature" for u in found)}


# --- the prompts that gave no triple -------------------------------------------------------------


@pytest.mark.parametrize("prompt,expected", [
    ("black underwear tights. Opaque matt tights. 200 denier.",
     {T("underwear tights", "has-color", "black"), T("underwear tights", "has-style", "opaque"),
      T("underwear tights", "has-style", "matt")}),
    ("white bra. Two soft bandeau bras in soft jersey with side support and a silicone trim at the top.",
     {T("bra", "has-color", "white"), T("bra", "has-style", "bandeau"), T("bra", "has-material", "jersey"),
      T("bra", "has-feature", "silicone trim")}),
    ("greyish beige hair clip. Plastic hair claws.",
     {T("hair clip", "has-color", "greyish beige"), T("hair clip", "has-material", "plastic")}),
])
def test_hosiery_underwear_and_accessories_give_their_graph(prompt, expected):
    found = triples(prompt)
    assert expected <= set(found)
    assert len(garments(found)) == 1


@pytest.mark.parametrize("colour", ["black", "white", "dark blue", "light pink", "beige", "yellowish brown",
                                    "off white", "greenish khaki", "light turquoise"])
def test_catalogue_colours_before_the_product_type_are_found(colour):
    found = triples(f"{colour} top. Fitted top in soft stretch jersey with a wide neckline and long sleeves.")
    values = {" ".join(t.value.replace("-", " ").split()) for t in found if t.entity == "top" and t.relation == "has-color"}
    assert values == {colour}


# --- multi-sentence descriptions ------------------------------------------------------------------


def test_a_garment_named_again_in_the_next_sentence_is_one_entity():
    found = triples("dark blue vest top. Jersey top with narrow shoulder straps.")
    assert garments(found) == {"vest top"}
    assert {T("vest top", "has-color", "dark blue"), T("vest top", "has-material", "jersey"),
            T("vest top", "has-feature", "straps"), T("straps", "has-style", "narrow")} <= set(found)


def test_the_garment_refers_back_across_sentences_even_under_another_noun():
    found = triples("black sweater. Long-sleeved sports top in functional fabric. Some of the polyester content "
                    "of the top is recycled.")
    assert garments(found) == {"sweater"}
    assert T("sweater", "has-material", "polyester") in found


def test_a_new_garment_with_a_or_an_stays_a_second_entity():
    assert {t.entity for t in triples("A red shirt. A blue shirt.")} == {"shirt", "shirt 2"}


def test_a_set_keeps_its_pieces_as_their_own_garments():
    found = triples("light pink pyjama set. Pyjamas in a soft cotton weave. Long-sleeved shirt with notch lapels. "
                    "Short shorts with an elasticated drawstring waist.")
    assert garments(found) == {"pyjama set", "shirt", "shorts"}
    assert T("shorts", "has-feature", "waist") in found and T("shirt", "has-feature", "lapels") in found


def test_garments_written_with_a_slash_are_one_entity():
    found = triples("black leggings/tights. Opaque matt leggings with an elasticated waist.")
    assert garments(found) == {"leggings"}


def test_a_sentence_without_a_head_describes_the_garment():
    found = triples(f"{TROUSERS} Regular fit. Lined.")
    assert {T("trousers", "has-style", "brushed"), T("trousers", "has-style", "regular fit"),
            T("trousers", "has-style", "lined")} <= set(found)


# --- modifiers bound to the right noun ----------------------------------------------------------


def test_ribbed_goes_to_the_hems_not_to_the_pocket_before_them():
    found = triples(TROUSERS)
    assert T("hems", "has-style", "ribbed") in found
    assert T("pocket", "has-style", "back") in found
    assert not any(t.entity in ("pocket", "pockets") and t.value == "ribbed" for t in found)


def test_modifiers_of_a_noun_the_lexicon_lacks_are_not_given_to_an_earlier_part():
    found = triples("a jacket with a zip and padded gizmos.", fuzzy=False)
    assert not any(t.value == "padded" for t in found)


def test_a_part_before_a_part_is_its_style():
    found = triples("black trousers. Trousers with flap side pockets.")
    assert {T("pockets", "has-style", "flap"), T("pockets", "has-style", "side")} <= set(found)
    assert T("trousers", "has-feature", "flap") not in found


def test_parts_that_only_say_where_give_no_triple():
    found = triples("grey hoodie. Jacket with a jersey-lined hood and ribbing at the cuffs and hem.")
    assert {T("hoodie", "has-feature", "hood"), T("hood", "has-style", "jersey-lined"),
            T("hoodie", "has-feature", "ribbing")} <= set(found)
    assert not {t.value for t in found} & {"cuffs", "hem"}


# --- numbers and sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [
    "grey sweater. Sweatshirt in soft organic cotton with a press-stud on one shoulder (sizes 12–18 months "
    "and 18-24 months without a press-stud). Brushed inside.",
    "black underwear tights. Semi shiny nylon stockings with a wide trim at the top. 20 denier.",
    "black belt. Leather belt with a metal buckle. Width 2.5 cm.",
])
def test_numbers_sizes_and_measures_stay_out_of_the_graph(prompt):
    found = triples(prompt)
    words = {word for t in found for field in t for word in field.split()}
    assert found and not words & {"sizes", "months", "denier", "cm", "width"}
    assert not any(character.isdigit() for word in words for character in word)


def test_three_quarter_length_is_a_length():
    found = triples("black leggings/tights. 3/4-length leggings in stretch jersey.", relation_set="fine")
    assert T("leggings", "has-length", "three-quarter-length") in found


# --- the real-text evaluation ---------------------------------------------------------------------


def write_table(path, rows):
    header = "article_id,product_type_name,product_group_name,colour_group_name,detail_desc\n"
    path.write_text(header + "".join(f'{a},{t},{g},{c},"{d}"\n' for a, t, g, c, d in rows), encoding="utf-8")
    return path


def test_catalogue_scores_count_empty_graphs_product_types_and_colours(tmp_path):
    table = write_table(tmp_path / "articles.csv", [
        ("108775015", "Vest top", "Garment Upper body", "Black", "Jersey top with narrow shoulder straps."),
        ("126589007", "Hair clip", "Accessories", "Greyish Beige", "Plastic hair claws."),
        ("999999001", "Gizmo", "Unknown", "Other", "Hello world."),
        ("999999002", "Dress", "Garment Full body", "Red", ""),
    ])
    articles = read_catalogue(table)
    assert [a.article_id for a in articles] == ["0108775015", "0126589007", "0999999001"]
    assert articles[0].prompt == article_prompt("Black", "Vest top", "Jersey top with narrow shoulder straps.")
    scores = real_eval.score_catalogue(articles)
    assert (scores.empty.hits, scores.empty.total) == (1, 3)  # "Hello world." about a gizmo gives nothing
    assert (scores.product_type.hits, scores.product_type.total) == (2, 2)
    assert (scores.colour.hits, scores.colour.total) == (2, 2)  # "Other" is no colour
    description_only = real_eval.score_catalogue(read_catalogue(table, "description"))
    assert description_only.colour.total == 0  # the colour is not written in the description


def test_the_table_must_have_the_hm_columns_and_the_cli_says_so_in_one_line(tmp_path, capsys):
    table = tmp_path / "articles.csv"
    table.write_text("article_id,detail_desc\n1,Jersey top.\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="colour_group_name"):
        read_catalogue(table)
    with pytest.raises(SystemExit, match="nowhere.csv"):
        real_eval.main(["--articles", str(tmp_path / "nowhere.csv"), "--toy-count", "0"])
    assert capsys.readouterr().err.strip() == f"error: articles.csv not found: {tmp_path / 'nowhere.csv'}"


def test_labelled_sample_is_100_descriptions_across_product_groups():
    sample = read_labelled_sample()
    assert len(sample) == 100 and len({item.article_id for item in sample}) == 100
    groups = {item.product_group for item in sample}
    assert {"Underwear", "Socks & Tights", "Swimwear", "Nightwear", "Accessories", "Shoes",
            "Garment Upper body", "Garment Lower body", "Garment Full body"} <= groups
    assert all(item.triples for item in sample)
    first = json.loads(LABELLED_SAMPLE.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"article_id", "product_group", "prompt", "triples"}


def test_the_llm_backend_is_scored_on_the_same_sample_and_its_fallbacks_are_the_parser():
    sample = read_labelled_sample()[:10]
    refusing = LLMTripleExtractor(lambda _instruction: "I cannot do that")
    rules = real_eval.score_labelled(sample, lambda prompt: parse_prompt(prompt).triples)
    assert real_eval.score_labelled(sample, lambda prompt: refusing.parse(prompt).triples) == rules
    echoing = LLMTripleExtractor(lambda _instruction: json.dumps([list(t) for t in sample[0].triples]))
    assert real_eval.score_labelled(sample[:1], lambda prompt: echoing.parse(prompt).triples).f1 == 1.0


def test_the_instrument_sees_a_wrong_parser():
    """Gate: the labelled-sample score separates the parser from one that drops half its triples."""
    sample = read_labelled_sample()
    parser = real_eval.score_labelled(sample, lambda prompt: parse_prompt(prompt).triples)
    halved = real_eval.score_labelled(sample, lambda prompt: parse_prompt(prompt).triples[::2])
    assert parser.f1 >= 0.85
    assert halved.recall < parser.recall - 0.3


# --- the vocabulary builder --------------------------------------------------------------------


def test_garment_types_come_from_the_product_type_column():
    assert build_vocabulary.garment_types({"Leggings/Tights", "Cap/peaked", "Unknown", "Other shoe"}) == [
        "cap", "leggings", "shoe", "tights"]


def test_colour_names_keep_catalogue_colours_and_survey_names_made_of_colour_words():
    survey = ["beige", "brown", "yellowish", "yellowish brown", "puke green", "green", "light beige", "denim"]
    css = {"beige", "brown", "green"}
    colours = build_vocabulary.colour_names({"Greyish Beige", "Other Pink", "Unknown"}, survey, css, {"denim"})
    assert colours == ["beige", "brown", "green", "greyish beige", "light beige", "pink", "yellowish",
                       "yellowish brown"]


def test_the_generated_vocabulary_reaches_the_parser():
    entries = parser_entries()
    assert entries["greyish beige"] is WordKind.COLOR and entries["vest top"] is WordKind.GARMENT
    assert entries["denim"] is WordKind.MATERIAL  # a base word keeps its kind
