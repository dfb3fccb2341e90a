"""CloudTrail's selector limits per trail, refused by the model (plan, InvalidSpec) naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from trailkeeper.api.trail import TrailSpec


def basic(*counts: int) -> dict[str, Any]:
    """Basic selectors, one data resource each holding `count` values."""
    return {
        "eventSelectors": [
            {
                "dataResources": [
                    {"type": "AWS::S3::Object", "values": [f"arn:aws:s3:::b{s}-{i}/" for i in range(n)]}
                ]
            }
            for s, n in enumerate(counts)
        ]
    }


def advanced(*counts: int) -> dict[str, Any]:
    """Advanced selectors, each with an equals condition and `count` startsWith values."""
    return {
        "advancedEventSelectors": [
            {
                "fieldSelectors": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.ARN", "startsWith": [f"arn:aws:s3:::b{s}-{i}/" for i in range(n)]},
                ]
            }
            for s, n in enumerate(counts)
        ]
    }


def trail(selectors: dict[str, Any]) -> TrailSpec:
    return TrailSpec.model_validate(
        {"regions": ["us-east-1"], "destination": {"bucket": "acme"}, **selectors}
    )


@pytest.mark.parametrize("counts", [(250,), (125, 125), (50, 50, 50, 50, 50)])
def test_up_to_250_data_resource_values_in_all_selectors_are_accepted(counts: tuple[int, ...]) -> None:
    trail(basic(*counts))


@pytest.mark.parametrize("counts", [(126, 125), (50, 50, 50, 50, 51)])
def test_more_than_250_data_resource_values_across_selectors_are_refused_naming_the_field(
    counts: tuple[int, ...],
) -> None:
    with pytest.raises(ValidationError, match=r"eventSelectors: at most 250 dataResources values.*gives 251"):
        trail(basic(*counts))


def test_up_to_500_condition_values_in_all_advanced_selectors_are_accepted() -> None:
    trail(advanced(249, 249))  # 2 x (1 + 249)


def test_more_than_500_condition_values_across_advanced_selectors_are_refused_naming_the_field() -> None:
    with pytest.raises(
        ValidationError, match=r"advancedEventSelectors: at most 500 condition values.*gives 501"
    ):
        trail(advanced(249, 250))


def test_a_sixth_event_selector_is_refused() -> None:
    with pytest.raises(ValidationError, match="eventSelectors"):
        trail(basic(1, 1, 1, 1, 1, 1))
