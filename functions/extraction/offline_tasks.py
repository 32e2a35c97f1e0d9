"""Split a voice-note transcript into task titles and attach the date phrases to them.

The rules are lexical. A task starts at a lead-in such as "remind me to" or "I need
to", or at a common to-do verb that opens a clause ("..., buy milk"). A clause
without either is an aside and yields no task.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field, replace

from functions.extraction.offline_dates import DateMention, LocalDue

logger = logging.getLogger(__name__)

# NOTE: a task that opens with a verb missing from this list, and has no lead-in,
# is not found. The list contains verbs that commonly open a to-do item.
ACTION_VERBS = frozenset(
    """
    add apply arrange ask back bake book bring buy call cancel change charge check clean
    clear collect confirm contact cook deliver download drop email empty feed file fill
    finish fix follow get go grab hand install invite iron look mail make meet move order
    organise organize pack pay phone pick plan post practise practice prepare print put read
    record register remove renew repair replace reply reserve respond return review ring
    schedule send set ship sign sort study submit take text tidy top transfer update upload
    visit vacuum walk wash water write
    """.split()  # noqa: SIM905 - a word list reads better as text
)

# Longest lead-ins first, so "remind me to" wins over "remind me".
LEAD_INS: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(phrase.split())
            for phrase in (
                "remind me to",
                "remind me",
                "don't forget to",
                "don't forget",
                "do not forget to",
                "remember to",
                "i need to",
                "i have to",
                "i've got to",
                "i got to",
                "i gotta",
                "i must",
                "i should",
                "i want to",
                "i'd like to",
                "need to",
                "have to",
                "make sure to",
                "make sure i",
                "add to my list",
                "note to self",
                "thing is to",
            )
        ),
        key=len,
        reverse=True,
    )
)

# Words that carry no content at the start of a clause: hesitations, discourse
# markers, conjunctions and the counters people use when listing ("one, ... two, ...").
FILLERS = frozenset(
    """
    um uh er erm hmm oh ok okay so well right alright hey and also then or plus first second
    third fourth fifth sixth next finally lastly one two three four five six
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_HESITATIONS = frozenset({"um", "uh", "er", "erm", "hmm"})
_CLAUSE_ENDS = frozenset({",", ";", ":", "so", "because", "but", "since", "which", "although", "though"})
_SENTENCE_ENDS = frozenset({".", "!", "?"})
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st"})
_PREPOSITIONS = frozenset({"on", "by", "at", "in", "before", "until", "till", "for", "from"})
_TRAILING = _PREPOSITIONS | _HESITATIONS | {"and", "or", "also", "so", "then", "to"}
_DEADLINE_WORDS = frozenset({"by", "before", "until", "till"})
_NOT_A_TASK_AFTER_VERB = frozenset({"not", "what", "of"})
"""A verb followed by these is rhetoric ("ask not what ...") or not a verb ("sort of"), so no task starts."""

_TOKEN = re.compile(r"\d+(?:[.:]\d+)+|\w+(?:[-'’]\w+)*|[.,;:!?]")


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int

    @property
    def word(self) -> str:
        return self.text.lower().replace("’", "'")


@dataclass
class TaskDraft:
    """A task found in a transcript, before its due value is turned into UTC."""

    title: str
    due: DateMention | None = None


@dataclass
class _Span:
    """Token positions of one task: lead-in start, title start and span end (exclusive)."""

    start: int
    title_start: int
    end: int = 0
    lead_in: bool = False
    preamble: list[DateMention] = field(default_factory=list)
    inside: list[DateMention] = field(default_factory=list)


def split_tasks(transcript: str, mentions: list[DateMention]) -> list[TaskDraft]:
    """Split ``transcript`` into tasks and give each the date phrase it was spoken with.

    Args:
        transcript: The text of the note.
        mentions: Date phrases in ``transcript``, from :func:`find_dates`.

    Returns:
        The tasks in the order spoken, with titles in imperative form. A task
        with only a time of day ("call Mum in the evening") takes its date from
        the nearest earlier task that has one.
    """
    tokens = [_Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(transcript)]
    mention_at = _mention_index(tokens, mentions)
    sentence_of = _sentence_numbers(tokens, mention_at)

    spans = _task_spans(tokens, mention_at, sentence_of)
    _assign_mentions(spans, tokens, mentions, mention_at, sentence_of)

    # A mention spoken before a task ("tomorrow afternoon pick up ...") is never part of a title.
    leading = [mention for span in spans for mention in span.preamble]

    drafts: list[TaskDraft] = []
    carried: DateMention | None = None
    for span in spans:
        due = _choose_due(span, tokens) or carried
        carried = None
        title = _title(span, tokens, mention_at, [*leading, due] if due else leading)
        if not title:
            # "Don't forget, tomorrow at 9 I have to ...": the date before an empty
            # lead-in belongs to the task that follows.
            carried = due
            continue
        drafts.append(TaskDraft(title=title, due=due))

    _inherit_dates(drafts)
    return drafts


def _mention_index(tokens: list[_Token], mentions: list[DateMention]) -> list[int | None]:
    """Map each token to the index of the date mention that covers it, if any."""
    owners: list[int | None] = []
    for token in tokens:
        owner = None
        for index, mention in enumerate(mentions):
            if mention.start <= token.start and token.end <= mention.end:
                owner = index
                break
        owners.append(owner)
    return owners


def _sentence_numbers(tokens: list[_Token], mention_at: list[int | None]) -> list[int]:
    numbers: list[int] = []
    sentence = 0
    for index, token in enumerate(tokens):
        numbers.append(sentence)
        previous = tokens[index - 1].word if index else ""
        # A full stop inside "3 p.m." or after "Dr" does not end the sentence.
        if token.text in _SENTENCE_ENDS and mention_at[index] is None and previous not in _ABBREVIATIONS:
            sentence += 1
    return numbers


def _task_spans(tokens: list[_Token], mention_at: list[int | None], sentence_of: list[int]) -> list[_Span]:
    spans: list[_Span] = []
    index = 0
    while index < len(tokens):
        lead_in = _lead_in_length(tokens, index)
        if lead_in:
            spans.append(_Span(start=index, title_start=index + lead_in, lead_in=True))
            index += lead_in
            continue

        if _opens_task(tokens, index, mention_at, spans):
            spans.append(_Span(start=index, title_start=index))
        index += 1

    for position, span in enumerate(spans):
        next_start = spans[position + 1].start if position + 1 < len(spans) else len(tokens)
        sentence_end = next(
            (i for i in range(span.start, len(tokens)) if sentence_of[i] != sentence_of[span.start]),
            len(tokens),
        )
        span.end = min(next_start, sentence_end)
    return spans


def _lead_in_length(tokens: list[_Token], index: int) -> int:
    for phrase in LEAD_INS:
        words = tuple(token.word for token in tokens[index : index + len(phrase)])
        if words == phrase:
            return len(phrase)
    return 0


def _opens_task(tokens: list[_Token], index: int, mention_at: list[int | None], spans: list[_Span]) -> bool:
    """Tell whether the verb at ``index`` opens a clause, so it starts a new task."""
    if tokens[index].word not in ACTION_VERBS or mention_at[index] is not None:
        return False

    following = tokens[index + 1].word if index + 1 < len(tokens) else ""
    if following in _NOT_A_TASK_AFTER_VERB:
        return False

    # Walk back over fillers to the previous word that carries content.
    back = index - 1
    saw_and = False
    while back >= 0 and tokens[back].word in FILLERS and mention_at[back] is None:
        saw_and = saw_and or tokens[back].word in {"and", "or"}
        back -= 1

    if back < 0 or tokens[back].text in _SENTENCE_ENDS or tokens[back].text in _CLAUSE_ENDS:
        return True
    if mention_at[back] is not None:
        return True

    # "sign and send back the form" is one task with two verbs: split at "and"
    # only when the task so far has more than its verb.
    if saw_and and spans:
        return index - spans[-1].title_start > 2
    return False


def _assign_mentions(
    spans: list[_Span],
    tokens: list[_Token],
    mentions: list[DateMention],
    mention_at: list[int | None],
    sentence_of: list[int],
) -> None:
    """Attach each mention to the task it was spoken with, either inside the task's span or just before it."""
    first_token = {owner: i for i, owner in reversed(list(enumerate(mention_at))) if owner is not None}
    last_token = {owner: i for i, owner in enumerate(mention_at) if owner is not None}

    for index, mention in enumerate(mentions):
        if index not in first_token:
            continue
        position = first_token[index]
        owner = _span_containing(spans, position)

        if owner is None:
            # A date before any task of its sentence ("Next Monday morning, send ...")
            # belongs to the task that follows.
            following = next((s for s in spans if s.start > position), None)
            if following is None:
                continue
            same_sentence = sentence_of[following.start] == sentence_of[position]
            if same_sentence or _only_fillers_between(tokens, last_token[index] + 1, following.start):
                following.preamble.append(mention)
            continue

        span = spans[owner]
        after = spans[owner + 1] if owner + 1 < len(spans) else None
        # "call the hotel tonight at 9, tomorrow afternoon pick up the car": a
        # second date right before the next task belongs to that task.
        if (
            after is not None
            and (span.preamble or span.inside)
            and _only_fillers_between(tokens, last_token[index] + 1, after.start)
        ):
            after.preamble.append(mention)
            continue
        span.inside.append(mention)


def _span_containing(spans: list[_Span], position: int) -> int | None:
    for index, span in enumerate(spans):
        if span.start <= position < span.end:
            return index
    return None


def _only_fillers_between(tokens: list[_Token], start: int, end: int) -> bool:
    return all(token.word in FILLERS or token.text in _CLAUSE_ENDS for token in tokens[start:end])


def _choose_due(span: _Span, tokens: list[_Token]) -> DateMention | None:
    """Prefer a deadline ("by Thursday") to another date in the task, then the first date in it."""
    for mention in span.inside:
        words = mention.text.lower().split()
        before = _word_before(tokens, mention.start)
        if words[0] in _DEADLINE_WORDS or before in _DEADLINE_WORDS:
            return mention
    if span.inside:
        return span.inside[0]
    if span.preamble:
        return span.preamble[-1]
    return None


def _word_before(tokens: list[_Token], offset: int) -> str:
    previous = [token for token in tokens if token.end <= offset]
    return previous[-1].word if previous else ""


def _title(span: _Span, tokens: list[_Token], mention_at: list[int | None], dates: list[DateMention]) -> str:
    """Build the title from the span's first clause, without lead-in, fillers and the given date phrases."""
    words: list[_Token] = []
    for index in range(span.title_start, span.end):
        token = tokens[index]
        if any(date.start <= token.start and token.end <= date.end for date in dates):
            # Drop "on" in "on Friday": the preposition belongs to the date.
            if words and words[-1].word in _PREPOSITIONS:
                words.pop()
            continue
        if mention_at[index] is None and token.word in _CLAUSE_ENDS and _has_content(words):
            break
        if token.text in _SENTENCE_ENDS or token.text in _CLAUSE_ENDS or token.word in _HESITATIONS:
            continue
        words.append(token)

    # Leading fillers and the "to" of "remind me in an hour to ..." are not part of the task.
    while words and (words[0].word in FILLERS or words[0].word == "to"):
        words.pop(0)
    while words and words[-1].word in _TRAILING:
        words.pop()

    if not _has_content(words):
        return ""
    if len(words) == 1 and not span.lead_in:
        # A bare verb such as "... and read." is a fragment, but "remind me to exercise" is a task.
        return ""
    text = " ".join(token.text for token in words)
    return text[0].upper() + text[1:]


def _has_content(words: list[_Token]) -> bool:
    return any(token.word not in FILLERS and token.word != "to" for token in words)


def _inherit_dates(drafts: list[TaskDraft]) -> None:
    """Give "in the evening" the date of the nearest earlier task that has a date."""
    for index, draft in enumerate(drafts):
        mention = draft.due
        if mention is None or not mention.time_of_day_only:
            continue

        earlier = next(
            (d.due.due for d in reversed(drafts[:index]) if d.due is not None and d.due.due is not None),
            None,
        )
        if earlier is None:
            continue

        day = earlier.date() if isinstance(earlier, dt.datetime) else earlier
        local: LocalDue = dt.datetime.combine(day, mention.clock) if mention.clock else day
        draft.due = replace(mention, due=local)
