"""The combo-value check every node's validate_inputs uses (ComfyUI 0.3.64 does not check V3 combos)."""

from atelier.models.reference_config import CHOICES
from atelier.nodes.combo_check import combo_errors


def test_valid_and_linked_values_pass():
    assert combo_errors(mode=("cross", CHOICES["mode"]), sites=(None, CHOICES["sites"])) is None


def test_every_bad_value_is_named_with_its_options():
    message = combo_errors(mode=("sideways", CHOICES["mode"]), sites=("everywhere", CHOICES["sites"]))
    assert "'mode' is 'sideways'" in message and "'concat'" in message
    assert "'sites' is 'everywhere'" in message
