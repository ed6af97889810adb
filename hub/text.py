"""Free text people type into the hub (names, summaries, keywords): trimmed, printable, never blank.

pydantic's ``strip_whitespace`` trims Unicode White_Space only, so a value of the C0 separators
U+001C..U+001F passed it and reached the DCAT export, where Python's ``str.strip`` (which does count them as
whitespace) found it blank. One definition here keeps what is accepted and what is exported in agreement, and
refuses control characters, which no catalogue title or summary holds and which XML serialisations cannot carry.
"""

from __future__ import annotations

import re

from pydantic import AfterValidator

# C0 controls and DEL; a multi-line text may keep tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _checked(pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        if pattern.search(value):
            raise ValueError("must not contain control characters")
        value = value.strip()
        if not value:
            raise ValueError("must contain text, not only whitespace")
        return value

    return AfterValidator(check)


# Use with the length bounds, e.g. ``Annotated[str, StringConstraints(min_length=1, max_length=200), ONE_LINE]``:
# the bounds document the field in the OpenAPI schema, the validator trims it and refuses what is blank.
ONE_LINE = _checked(_CONTROL)
MULTILINE = _checked(_CONTROL_MULTILINE)
