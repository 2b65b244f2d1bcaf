"""What one hash of the consortium becomes in python-threatexchange: a record keyed by
(threatexchange signal type, signal string), whose opinions follow the consortium's view.

From a hash view (the JSON of the operator API's `/v1/export` lines and `/v1/lookup` results):

- each add still standing (not retracted by its member) is a POSITIVE_CLASS opinion, or an
  INVESTIGATION_SEED one when the node flags it (its member was removed from the roster, or it
  lies past a key declared compromised), with the add's labels as tags;
- each dispute of such an add is a NEGATIVE_CLASS opinion of the disputing member, so a
  disputed hash aggregates to DISPUTED;
- a hash with no add standing (every member retracted its own) is no record: a deletion.

Each opinion keeps who made it (`member`) and where (`log`, `index`). Only the types
threatexchange shares exactly are given: pdq, vpdq (in its text form), video_md5 and url. The
files and the node's rules: docs/threatexchange.md.
"""

import typing as t
from dataclasses import dataclass, field

from threatexchange.exchanges.fetch_state import (
    FetchedSignalMetadata,
    SignalOpinion,
    SignalOpinionCategory,
)

from protocol.signal_names import OURS_TO_TE
from protocol.te_text import vpdq_to_te_text

RecordKey = tuple[str, str]


class RecordError(ValueError):
    """A hash view from the node that does not have the shape the operator API documents."""


# threatexchange's SignalOpinion and FetchedSignalMetadata are plain (mutable) dataclasses,
# and a frozen dataclass cannot extend one; nothing here changes a record once it is built.
@dataclass
class HashmeshOpinion(SignalOpinion):
    """One member's add (positive, or a seed if flagged) or dispute (negative) of a hash."""

    member: str | None = None  # None: the log's member has left the roster
    log: str = ""
    index: int = -1
    incident: str | None = None
    standing: str | None = None  # the node's flag on the add, if any
    dispute_reason: str | None = None  # the reason code, for a dispute


@dataclass
class HashmeshSignalMetadata(FetchedSignalMetadata):
    """A hash as the consortium sees it: every standing add and every dispute of one."""

    opinions: list[HashmeshOpinion] = field(default_factory=list)

    def get_as_opinions(self) -> t.Sequence[SignalOpinion]:
        return self.opinions

    def __str__(self) -> str:
        added = sorted({o.member or "?" for o in self.opinions if o.dispute_reason is None})
        return f"{super().__str__()} (added by {', '.join(added)})"


def te_signal(signal_type: str, value: str) -> RecordKey | None:
    """The threatexchange key of one of our hashes, None for a type it lacks."""
    name = OURS_TO_TE.get(signal_type)
    if name is None:
        return None
    if name == "vpdq":
        value = vpdq_to_te_text(bytes.fromhex(value))
    return name, value


def record_of(
    view: dict[str, t.Any], me: str | None
) -> tuple[RecordKey, HashmeshSignalMetadata | None] | None:
    """The record of a hash view (None: a deletion), or None for a type threatexchange lacks.
    `me` is the member id of the node asked, for threatexchange's `is_mine`."""
    try:
        key = te_signal(str(view["signal_type"]), str(view["value"]))
        if key is None:
            return None
        opinions: list[HashmeshOpinion] = []
        for s in view["submissions"]:
            if not s["active"]:
                continue  # retracted by its own member
            standing = s.get("standing")
            category = (
                SignalOpinionCategory.POSITIVE_CLASS
                if standing is None
                else SignalOpinionCategory.INVESTIGATION_SEED
            )
            opinions.append(
                HashmeshOpinion(
                    is_mine=s["member"] == me,
                    category=category,
                    tags=set(s["labels"]),
                    member=s["member"],
                    log=s["log"],
                    index=s["index"],
                    incident=s["incident"],
                    standing=standing,
                )
            )
            opinions.extend(
                HashmeshOpinion(
                    is_mine=d["member"] == me,
                    category=SignalOpinionCategory.NEGATIVE_CLASS,
                    tags=set(),
                    member=d["member"],
                    log=d["log"],
                    index=d["index"],
                    dispute_reason=str(d["reason_code"]),
                )
                for d in s["disputes"]
            )
    except (KeyError, TypeError, ValueError) as e:
        raise RecordError(f"a hash view from the node lacks or misshapes {e}") from e
    return key, (HashmeshSignalMetadata(opinions) if opinions else None)
