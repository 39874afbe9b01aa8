"""Triple schema, JSON round trip with errors that say where, and the paper's linearised triple prompt."""

import pytest
from atelier.models.text2graph import (
    PAPER_RELATIONS,
    RELATIONS,
    Triple,
    TripleSchemaError,
    linearize_triples,
    triples_from_json,
    triples_to_json,
    validate_triples,
)
from atelier.models.text2graph.llm import PAPER_EXAMPLE_TRIPLES


def test_relations_hold_the_papers_three_and_the_fashion_ones():
    assert PAPER_RELATIONS == ("has-color", "has-feature", "has-style")
    assert {"has-material", "has-pattern", "has-fit", "has-length"} <= set(RELATIONS)


def test_linearised_prompt_is_written_as_the_paper_prints_it():
    assert linearize_triples(PAPER_EXAMPLE_TRIPLES) == (
        "(jacket, has-color, navy blue), (jacket, has-feature, collar), (collar, has-style, straight-point), "
        "(collar, has-color, red), (jacket, has-feature, waist), (waist, has-color, blue)"
    )


def test_json_round_trip_keeps_triples_and_order():
    text = triples_to_json(PAPER_EXAMPLE_TRIPLES)
    assert text.count("\n") == len(PAPER_EXAMPLE_TRIPLES) + 1  # one triple per line, editable by hand
    assert triples_from_json(text) == list(PAPER_EXAMPLE_TRIPLES)
    assert triples_to_json([]) == "[]" and triples_from_json("[]") == []


def test_objects_and_lists_are_accepted_normalised_and_deduplicated():
    found = validate_triples([{"entity": " Jacket ", "relation": "HAS-COLOR", "value": "Navy  Blue"},
                              ["jacket", "has-color", "navy blue"]])
    assert found == [Triple("jacket", "has-color", "navy blue")]


def test_bad_json_names_the_input_line_and_column():
    with pytest.raises(TripleSchemaError, match=r"edited_json: invalid JSON at line 3, column 2"):
        triples_from_json('[\n  ["jacket", "has-color", "red"\n]', "edited_json")


@pytest.mark.parametrize("payload,message", [
    ('{"jacket": "red"}', "expected a list of triples"),
    ('[["jacket", "has-color"]]', "triple 0 is"),
    ('[["jacket", "is-worn-by", "me"]]', "relation 'is-worn-by'"),
    ('[["jacket", "has-color", ""]]', "triple 0 has value ''"),
    ('[{"entity": "jacket", "relation": "has-color"}]', "lacks key"),
    ('[["jacket", "has-color", "red"], ["a b c d e f g", "has-color", "red"]]', "triple 1 has a entity of 7 words"),
])
def test_schema_errors_name_the_input_and_the_triple(payload, message):
    with pytest.raises(TripleSchemaError, match=message) as error:
        triples_from_json(payload, "edited_json")
    assert str(error.value).startswith("edited_json")
