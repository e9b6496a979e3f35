"""Size and aspect-ratio mapping, tested on the catalog's own entries."""

import pytest

from imggen import sizes
from imggen.catalog import lookup
from imggen.errors import UsageError


def model(full_id: str):
    info = lookup(full_id)
    assert info is not None, full_id
    return info


def test_a_size_the_model_takes_is_sent_as_is() -> None:
    choice = sizes.choose(model("openai/dall-e-3"), "1792x1024", None)
    assert choice.size == "1792x1024" and choice.note is None


def test_a_size_the_model_lacks_maps_to_the_nearest_by_ratio_then_area() -> None:
    choice = sizes.choose(model("openai/dall-e-3"), "512x512", None)
    assert choice.size == "1024x1024"
    assert choice.note and "512x512" in choice.note and "1024x1024" in choice.note


def test_wide_request_on_dall_e_2_is_a_usage_error_naming_the_sizes() -> None:
    with pytest.raises(UsageError) as err:
        sizes.choose(model("openai/dall-e-2"), "1792x1024", None)
    assert "256x256" in str(err.value) and "1024x1024" in str(err.value)


def test_aspect_ratio_on_a_pixel_model_picks_a_native_size() -> None:
    assert sizes.choose(model("openai/dall-e-3"), None, "16:9").size == "1792x1024"


def test_gpt_image_2_takes_free_sizes_that_follow_its_rules() -> None:
    assert sizes.choose(model("openai/gpt-image-2"), "2048x1152", None).size == "2048x1152"


def test_gpt_image_2_snaps_an_odd_size_to_multiples_of_16() -> None:
    choice = sizes.choose(model("openai/gpt-image-2"), "1000x1000", None)
    assert choice.size is not None and choice.note
    width, height = sizes.parse_size(choice.size)
    assert width % 16 == 0 and height % 16 == 0 and width == height


def test_an_extreme_ratio_is_refused() -> None:
    with pytest.raises(UsageError):
        sizes.choose(model("openai/gpt-image-1"), "3000x500", None)


def test_size_and_aspect_ratio_together_are_refused() -> None:
    with pytest.raises(UsageError):
        sizes.choose(model("openai/dall-e-3"), "1024x1024", "1:1")


@pytest.mark.parametrize("bad", ["big", "1024", "0x100", "10x-1"])
def test_a_malformed_size_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        sizes.choose(model("openai/dall-e-3"), bad, None)


def test_auto_only_where_the_model_takes_it() -> None:
    assert sizes.choose(model("openai/gpt-image-1"), "auto", None).size == "auto"
    with pytest.raises(UsageError):
        sizes.choose(model("openai/dall-e-3"), "auto", None)


def test_unknown_model_gets_the_size_as_given() -> None:
    assert sizes.choose(None, "640x480", None).size == "640x480"
