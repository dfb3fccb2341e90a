"""CloudTrail's hard limits on a trail's event selectors, counted across all of a trail's selectors.

"Quotas in AWS CloudTrail": at most 5 event selectors per trail (the schema's maxItems), 250 data resource
values across all of a trail's basic event selectors, and 500 condition values across all of its advanced
event selectors. PutEventSelectors refuses more; here a spec asking for more is refused first, by the
model (`trailkeeper plan`, the operator's InvalidSpec) and by a CEL rule at admission, naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DATA_RESOURCE_VALUES_PER_TRAIL = 250
ADVANCED_CONDITION_VALUES_PER_TRAIL = 500

# The operators of an advanced field selector: (attribute, field name in the spec).
_OPERATORS = (
    ("equals", "equals"),
    ("starts_with", "startsWith"),
    ("ends_with", "endsWith"),
    ("not_equals", "notEquals"),
    ("not_starts_with", "notStartsWith"),
    ("not_ends_with", "notEndsWith"),
)

DATA_RESOURCES_MESSAGE = (
    f"eventSelectors: at most {DATA_RESOURCE_VALUES_PER_TRAIL} dataResources values in all of a trail's "
    "event selectors (AWS's limit per trail); use a prefix such as arn:aws:s3 for many buckets, or "
    "advancedEventSelectors"
)
CONDITION_VALUES_MESSAGE = (
    f"advancedEventSelectors: at most {ADVANCED_CONDITION_VALUES_PER_TRAIL} condition values in all of a "
    "trail's advanced event selectors (AWS's limit per trail); use startsWith prefixes for many values"
)


def data_resource_values(event_selectors: Sequence[Any]) -> int:
    return sum(len(resource.values) for s in event_selectors for resource in s.data_resources)


def advanced_condition_values(advanced_event_selectors: Sequence[Any]) -> int:
    return sum(
        len(getattr(field, attribute) or [])
        for selector in advanced_event_selectors
        for field in selector.field_selectors
        for attribute, _ in _OPERATORS
    )


def selector_limit_problems(event_selectors: Sequence[Any], advanced: Sequence[Any]) -> list[str]:
    """What a spec's selectors ask beyond AWS's limits per trail, each naming the field and the count."""
    problems = []
    if (count := data_resource_values(event_selectors)) > DATA_RESOURCE_VALUES_PER_TRAIL:
        problems.append(f"{DATA_RESOURCES_MESSAGE} (the spec gives {count})")
    if (count := advanced_condition_values(advanced)) > ADVANCED_CONDITION_VALUES_PER_TRAIL:
        problems.append(f"{CONDITION_VALUES_MESSAGE} (the spec gives {count})")
    return problems


# CEL for the admission rules (api/admission.py), on the lists themselves. sum() is the Kubernetes CEL
# list library's; every list walked has maxItems (5 x 250, 500 x 50), and size() walks nothing.
DATA_RESOURCES_RULE = (
    "self.map(s, has(s.dataResources) ? s.dataResources.map(d, has(d.values) ? size(d.values) : 0).sum()"
    f" : 0).sum() <= {DATA_RESOURCE_VALUES_PER_TRAIL}"
)
CONDITION_VALUES_RULE = (
    "self.map(a, a.fieldSelectors.map(f, "
    + " + ".join(f"(has(f.{name}) ? size(f.{name}) : 0)" for _, name in _OPERATORS)
    + f").sum()).sum() <= {ADVANCED_CONDITION_VALUES_PER_TRAIL}"
)
