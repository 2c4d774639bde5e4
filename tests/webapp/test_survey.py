"""The survey page over HTTP: what the rater sees, what each POST saves, and bad input.

Service-level behaviour (pseudonyms, races, merging drafts) is in
``tests/surveys/test_responses.py``; these tests go through the Flask test client only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import OperationalError

from surveys import cycles, responses
from surveys.models import (
    AccessToken,
    Assignment,
    AssignmentStatus,
    Cycle,
    CycleState,
    Draft,
    Response,
    ResponseComment,
    ResponseItem,
)
from surveys.tokens import hash_token
from tests import factories as f

NEEDS_ANSWER = "This question needs an answer."


# --- reading pages --------------------------------------------------------------------


@dataclass
class Control:
    """One <input> or <textarea> with what a screen reader would know about it."""

    tag: str
    attrs: dict[str, str]
    in_label: bool
    fieldset: str | None  # id of the enclosing fieldset
    text: str = ""

    @property
    def name(self) -> str:
        return self.attrs.get("name", "")


@dataclass
class Fieldset:
    id: str
    legend: str = ""
    text: str = ""


class Page(HTMLParser):
    """A tiny DOM summary: form controls, labels and fieldsets (stdlib parser only)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: list[Control] = []
        self.fieldsets: dict[str, Fieldset] = {}
        self.label_for: set[str] = set()
        self._labels = 0
        self._fieldset: Fieldset | None = None
        self._in_legend = False
        self._textarea: Control | None = None

    @classmethod
    def of(cls, response) -> Page:
        page = cls()
        page.feed(response.get_data(as_text=True))
        page.close()
        return page

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "label":
            self._labels += 1
            if "for" in a:
                self.label_for.add(a["for"])
        elif tag == "fieldset":
            self._fieldset = self.fieldsets.setdefault(a.get("id", ""), Fieldset(a.get("id", "")))
        elif tag == "legend":
            self._in_legend = True
        elif tag in ("input", "textarea"):
            fs = self._fieldset.id if self._fieldset else None
            control = Control(tag, a, self._labels > 0, fs)
            self.controls.append(control)
            if tag == "textarea":
                self._textarea = control

    def handle_endtag(self, tag):
        if tag == "label":
            self._labels -= 1
        elif tag == "fieldset":
            self._fieldset = None
        elif tag == "legend":
            self._in_legend = False
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._fieldset is not None:
            self._fieldset.text += data
            if self._in_legend:
                self._fieldset.legend += data
        if self._textarea is not None:
            self._textarea.text += data

    # queries

    def radios(self, name: str) -> list[Control]:
        return [c for c in self.controls if c.name == name and c.attrs.get("type") == "radio"]

    def checked(self) -> dict[str, str]:
        return {
            c.name: c.attrs["value"]
            for c in self.controls
            if c.attrs.get("type") == "radio" and "checked" in c.attrs
        }

    def textarea(self, name: str) -> str:
        (control,) = [c for c in self.controls if c.tag == "textarea" and c.name == name]
        return control.text

    def hidden(self, name: str) -> str:
        (control,) = [
            c for c in self.controls if c.attrs.get("type") == "hidden" and c.name == name
        ]
        return control.attrs["value"]

    def item(self, item_id: str) -> Fieldset:
        return self.fieldsets["q-" + item_id.replace(".", "-")]


def text_of(response) -> str:
    """The visible text, tags removed and whitespace collapsed (for wording checks)."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- fixtures and helpers -------------------------------------------------------------


@pytest.fixture
def open_cycle(session):
    """A launched pulse cycle for a team of four; T Member 1 is the one we rate."""
    boss, team = f.team(session, 4)
    cycle = f.launched(session, team)
    return cycle, boss, team


@pytest.fixture
def bank(open_cycle):
    return responses.cycle_bank(open_cycle[0])


@pytest.fixture
def link(session, open_cycle):
    """The rating link of T Member 2 rating T Member 1 as a peer."""
    _, _, team = open_cycle
    return f.token_for(session, team[0], "peer", rater=team[1])


def assignment_of(session, raw: str) -> Assignment:
    session.expire_all()
    token = session.scalar(select(AccessToken).where(AccessToken.token_hash == hash_token(raw)))
    return token.assignment


def draft_of(session, raw: str) -> Draft | None:
    session.expire_all()
    return session.get(Draft, assignment_of(session, raw).id)


def count_responses(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Response))


def post(client, raw, data=None, *, action="next", section=0, **kwargs):
    form = {"section": str(section), "action": action, **(data or {})}
    return client.post(f"/s/{raw}", data=form, **kwargs)


def rate(items, value="4") -> dict[str, str]:
    return {f"r:{item.id}": str(value) for item in items}


def answer_everything(client, raw, bank, value="4"):
    """Go through every section with Next, the way a rater without JavaScript would."""
    for index, competency in enumerate(bank.competencies):
        assert post(client, raw, rate(competency.items, value), section=index).status_code == 302


# --- what the rater sees --------------------------------------------------------------


def test_page_says_whom_you_rate_in_which_role_with_others_wording(client, link, bank):
    page = client.get(f"/s/{link}")
    assert page.status_code == 200
    text = text_of(page)
    assert "Feedback for T Member 1" in text
    assert "answering as their peer" in text
    first = bank.competencies[0].items[0]
    assert first.others_text.format(name="T Member 1") in text
    assert first.self_text not in text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in (
        page.get_data(as_text=True)
    )


@pytest.mark.parametrize("show_manager", [True, False])
def test_a_manager_shown_by_name_is_told_on_the_page_and_nobody_else_is(
    session, client, open_cycle, bank, show_manager
):
    cycle, _, team = open_cycle
    cycle.show_manager = show_manager
    session.commit()
    manager_link = f.token_for(session, team[0], "manager")
    manager = text_of(client.get(f"/s/{manager_link}"))
    last_page = text_of(client.get(f"/s/{manager_link}?section={len(bank.competencies)}"))
    peer = text_of(client.get(f"/s/{f.token_for(session, team[0], 'peer', rater=team[1])}"))
    assert "not anonymous" not in peer
    assert "Your answers are anonymous" in peer  # the footer
    if show_manager:
        assert (
            'your ratings appear in the report under "Manager"; they are not anonymous' in manager
        )
        assert (
            "your answers appear in the report under “Manager”: they are not anonymous" in manager
        )
        assert "Your answers are anonymous" not in manager
        assert "anonymously" not in last_page
        assert "mixed with other comments" not in last_page
        assert "your answers are final and appear in the report under “Manager”" in last_page
        assert "labelled “Manager”" in last_page
    else:
        assert "not anonymous" not in manager
        assert "Your answers are anonymous" in manager


def test_thanks_page_counts_the_raters_other_surveys_left(session, client, open_cycle, bank):
    _, _, team = open_cycle
    links = [f.token_for(session, member, "manager") for member in team]
    answer_everything(client, links[0], bank)
    assert post(client, links[0], action="submit", section=4).status_code == 302
    thanks = text_of(client.get(f"/s/{links[0]}"))
    assert f"You have {len(team) - 1} more surveys to answer in this cycle" in thanks
    assert "nothing more to do" not in thanks
    assert "under “Manager”" in thanks  # the cycle shows the manager by name
    assert "anonymously" not in thanks
    for raw in links[1:]:
        answer_everything(client, raw, bank)
        assert post(client, raw, action="submit", section=4).status_code == 302
    assert "There is nothing more to do" in text_of(client.get(f"/s/{links[-1]}"))


def test_self_assessment_uses_the_self_wording(session, client, open_cycle, bank):
    _, _, team = open_cycle
    page = client.get(f"/s/{f.token_for(session, team[0], 'self')}")
    text = text_of(page)
    assert "Your self-assessment" in text
    first = bank.competencies[0].items[0]
    assert first.self_text in text  # "I listen to understand …"
    assert first.self_text.startswith("I ")
    assert "T Member 1" not in text
    # Skipping one's own assessment is not declining to rate someone else.
    assert "I'd rather not assess myself" in text
    assert "I can't give feedback to this person" not in text
    skip = text_of(client.get(f"/s/{f.token_for(session, team[0], 'self')}/decline"))
    assert "Skip your self-assessment?" in skip
    assert "work closely enough" not in skip


def test_every_item_is_a_fieldset_with_legend_scale_labels_and_na(client, link, bank):
    page = Page.of(client.get(f"/s/{link}"))
    labels = bank.scale.labels
    section = bank.competencies[0]
    assert len(page.fieldsets) == len(section.items)
    for item in section.items:
        fieldset = page.item(item.id)
        assert item.others_text.format(name="T Member 1") in fieldset.legend
        for label in (*labels.values(), bank.scale.na_label):
            assert label in fieldset.text
        radios = page.radios(f"r:{item.id}")
        assert [r.attrs["value"] for r in radios] == [*map(str, labels), "na"]
        assert {r.fieldset for r in radios} == {fieldset.id}
    for control in page.controls:
        if control.attrs.get("type") != "hidden":
            labelled = control.in_label or control.attrs.get("id") in page.label_for
            assert labelled, control.attrs


def test_progress_names_the_section_out_of_all(client, link, bank):
    total = len(bank.competencies) + 1
    assert total == 5
    text = text_of(client.get(f"/s/{link}"))
    assert f"Section 1 of {total}: {bank.competencies[0].title}" in text
    last = text_of(client.get(f"/s/{link}?section={total - 1}"))
    assert f"Section {total} of {total}: Comments and submit" in last


def test_next_saves_the_section_and_redirects_to_the_next(session, client, link, bank):
    section = bank.competencies[0]
    reply = post(client, link, rate(section.items, "5"))
    assert reply.status_code == 302
    assert reply.location.endswith(f"/s/{link}?section=1#section-title")
    assert draft_of(session, link).answers == {i.id: 5 for i in section.items}
    assert assignment_of(session, link).status == AssignmentStatus.IN_PROGRESS
    page = client.get(reply.location)
    assert f"Section 2 of 5: {bank.competencies[1].title}" in text_of(page)

    back = post(client, link, action="back", section=1)
    assert back.location.endswith(f"/s/{link}?section=0#section-title")
    goto = post(client, link, action="goto-3", section=4)
    assert goto.location.endswith(f"/s/{link}?section=3#section-title")
    for forged in ("goto-²", "goto-", "goto-99", "dance"):  # "²".isdigit() but int() refuses it
        reply = post(client, link, action=forged, section=2)
        assert reply.status_code == 302, forged
        assert reply.location.endswith("#section-title"), forged


def test_another_device_resumes_with_saved_answers_at_the_first_open_section(
    app, session, link, bank
):
    first, second = bank.competencies[:2]
    laptop = app.test_client()
    post(laptop, link, rate(first.items, "2"), section=0)
    post(laptop, link, {f"r:{second.items[0].id}": "na"}, section=1)

    phone = app.test_client()  # no cookies: only the link is shared
    page = phone.get(f"/s/{link}")
    assert "Section 2 of 5" in text_of(page)
    assert Page.of(page).checked() == {f"r:{second.items[0].id}": "na"}
    earlier = Page.of(phone.get(f"/s/{link}?section=0"))
    assert earlier.checked() == {f"r:{i.id}": "2" for i in first.items}


def test_autosave_saves_valid_answers_and_reports_field_errors(session, client, link, bank):
    one, two, three = bank.competencies[0].items
    question = bank.open_questions[0].id
    reply = client.post(
        f"/s/{link}/autosave",
        data={f"r:{one.id}": "3", f"r:{two.id}": "7", f"r:{three.id}": "na", f"c:{question}": "Hi"},
    )
    assert reply.status_code == 200
    assert reply.json["saved"] is True
    assert set(reply.json["errors"]) == {two.id}
    assert "from 1 to 5" in reply.json["errors"][two.id]
    draft = draft_of(session, link)
    assert draft.answers == {one.id: 3, three.id: "na"}
    assert draft.comments == {question: "Hi"}


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [("7", "Choose a value from 1 to 5, or N/A."), ("abc", "Choose one of the options.")],
)
def test_bad_rating_is_422_next_to_its_item_and_the_rest_is_saved(
    session, client, link, bank, bad, message
):
    one, two, three = bank.competencies[0].items
    reply = post(client, link, {f"r:{one.id}": "4", f"r:{two.id}": bad, f"r:{three.id}": "na"})
    assert reply.status_code == 422
    page = Page.of(reply)
    assert message in page.item(two.id).text
    assert message not in page.item(one.id).text
    assert page.checked() == {f"r:{one.id}": "4", f"r:{three.id}": "na"}
    assert "Section 1 of 5" in text_of(reply)  # stays where the problem is
    assert draft_of(session, link).answers == {one.id: 4, three.id: "na"}


def test_missing_required_item_on_submit_goes_back_to_it(session, client, link, bank):
    required = next(i for i in bank.competencies[2].items if i.required)
    other = next(i for i in bank.competencies[2].items if not i.required)
    for index, competency in enumerate(bank.competencies):
        answered = [i for i in competency.items if i is not required]
        assert post(client, link, rate(answered), section=index).status_code == 302

    reply = post(client, link, action="submit", section=4)
    assert reply.status_code == 302
    assert "section=2" in reply.location
    page = client.get(reply.location)
    assert "Section 3 of 5" in text_of(page)
    parsed = Page.of(page)
    assert NEEDS_ANSWER in parsed.item(required.id).text
    assert NEEDS_ANSWER not in parsed.item(other.id).text
    assert assignment_of(session, link).status == AssignmentStatus.IN_PROGRESS
    assert count_responses(session) == 0


def test_the_final_page_counts_required_statements_left_before_submit(client, link, bank):
    required = [i for c in bank.competencies for i in c.items if i.required]
    assert len(required) > 1
    first = bank.competencies[0]
    answered = [i for i in first.items if not i.required]
    assert post(client, link, rate(answered), section=0).status_code == 302
    final = text_of(client.get(f"/s/{link}?section={len(bank.competencies)}"))
    n = len(required)
    assert f"{n} required statements still need an answer before you can submit" in final
    in_first = sum(1 for i in first.items if i.required)
    assert f"{len(answered)}/{len(first.items)} · {in_first} required" in final
    for index, competency in enumerate(bank.competencies):
        assert post(client, link, rate(competency.items), section=index).status_code == 302
    final = text_of(client.get(f"/s/{link}?section={len(bank.competencies)}"))
    assert "still need" not in final
    assert " required" not in final


def test_save_for_later_says_it_saved_and_how_to_come_back(client, link, bank):
    first = bank.competencies[0].items[0]
    reply = post(client, link, {f"r:{first.id}": "4"}, action="save")
    assert reply.status_code == 302
    page = text_of(client.get(reply.location))
    assert "Saved. Open the link in your email any time to carry on" in page
    assert "Saved. Open the link" not in text_of(client.get(reply.location))  # said once


def test_submitting_with_nothing_answered_says_so_and_stores_nothing(session, client, link, bank):
    for index, competency in enumerate(bank.competencies):
        post(client, link, rate(competency.items, "na"), section=index)
    reply = post(client, link, action="submit", section=4)
    assert reply.status_code == 302
    page = text_of(client.get(reply.location))
    assert "Nothing is answered yet: rate at least one statement or write a comment" in page
    assert count_responses(session) == 0
    assert assignment_of(session, link).status == AssignmentStatus.IN_PROGRESS


def test_a_1mb_comment_is_refused_with_a_message_and_kept_in_the_textarea(
    session, client, link, bank
):
    keep, change = (q.id for q in bank.open_questions)
    rating = bank.competencies[0].items[0].id
    huge = "x" * 1_000_000
    reply = post(
        client,
        link,
        {f"c:{keep}": huge, f"c:{change}": "Shorter meetings", f"r:{rating}": "3"},
        action="submit",
        section=4,
    )
    assert reply.status_code == 422
    assert "Please keep this to 10,000 characters or fewer (it has 1,000,000)." in text_of(reply)
    assert Page.of(reply).textarea(f"c:{keep}") == huge
    draft = draft_of(session, link)
    assert draft.comments == {change: "Shorter meetings"}
    assert draft.answers == {rating: 3}
    assert assignment_of(session, link).status == AssignmentStatus.IN_PROGRESS


def test_a_body_over_the_limit_gets_the_413_page(session, client, link, bank):
    keep = bank.open_questions[0].id
    reply = post(client, link, {f"c:{keep}": "x" * (2 * 1024 * 1024 + 1)}, section=4)
    assert reply.status_code == 413
    assert "too large" in text_of(reply)
    assert draft_of(session, link) is None


def test_html_in_a_comment_is_escaped_when_shown_again(session, client, link, bank):
    keep = bank.open_questions[0].id
    evil = '</textarea><script>alert("x")</script><b onmouseover=x>'
    post(client, link, {f"c:{keep}": evil}, action="save", section=4)
    reply = client.get(f"/s/{link}?section=4")
    html = reply.get_data(as_text=True)
    assert "<script>alert" not in html
    assert "<b onmouseover" not in html
    assert "&lt;/textarea&gt;&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert Page.of(reply).textarea(f"c:{keep}") == evil
    # and on the 422 page, where the raw posted text is echoed back
    refused = post(client, link, {f"c:{keep}": evil + "y" * 10_001}, section=4)
    assert refused.status_code == 422
    assert "<script>alert" not in refused.get_data(as_text=True)


def test_nul_in_a_comment_is_dropped_so_postgresql_can_store_it(session, client, link, bank):
    """A pasted NUL made every submit fail on PostgreSQL (text cannot hold it)."""
    answer_everything(client, link, bank)
    keep = bank.open_questions[0].id
    assert (
        post(client, link, {f"c:{keep}": "Calm\x00 under pressure"}, action="save").status_code
        == 302
    )
    assert post(client, link, action="submit", section=4).status_code == 302
    assert session.scalars(select(ResponseComment.text)).all() == ["Calm under pressure"]


# --- submitting -----------------------------------------------------------------------


def test_submit_shows_thanks_and_a_second_submit_changes_nothing(session, client, link, bank):
    answer_everything(client, link, bank)
    keep = bank.open_questions[0].id
    reply = post(client, link, {f"c:{keep}": "Keep it up"}, action="submit", section=4)
    assert reply.status_code == 302
    assert count_responses(session) == 1

    page = client.get(f"/s/{link}")
    assert page.status_code == 200
    assert "Thank you – your feedback has been submitted" in text_of(page)
    assert "stored anonymously" in text_of(page)
    assert 'name="r:' not in page.get_data(as_text=True)

    again = post(client, link, {f"c:{keep}": "Changed my mind"}, action="submit", section=4)
    assert again.status_code == 302
    autosave = client.post(f"/s/{link}/autosave", data={f"c:{keep}": "late"})
    assert autosave.status_code == 409
    assert count_responses(session) == 1
    assert session.scalars(select(ResponseComment.text)).all() == ["Keep it up"]
    assert draft_of(session, link) is None


def test_decline_then_change_of_mind(session, client, link, bank):
    post(client, link, rate(bank.competencies[0].items), section=0)
    assert "I can't give feedback to this person" in text_of(client.get(f"/s/{link}"))
    confirm = client.get(f"/s/{link}/decline")
    assert "Decline this feedback request?" in text_of(confirm)

    reply = client.post(f"/s/{link}/decline")
    assert reply.status_code == 302
    page = client.get(f"/s/{link}")
    assert "You declined this request" in text_of(page)
    assert 'name="r:' not in page.get_data(as_text=True)
    assert assignment_of(session, link).status == AssignmentStatus.DECLINED
    assert draft_of(session, link) is None

    assert client.post(f"/s/{link}/resume").status_code == 302
    assert assignment_of(session, link).status == AssignmentStatus.PENDING
    page = client.get(f"/s/{link}")
    assert "Section 1 of 5" in text_of(page)
    answer_everything(client, link, bank)
    assert post(client, link, action="submit", section=4).status_code == 302
    assert count_responses(session) == 1


# --- links that must not work ---------------------------------------------------------


def not_found_body(reply) -> str:
    assert reply.status_code == 404
    assert "Set-Cookie" not in reply.headers  # a 404 starts no session
    return reply.get_data(as_text=True)


def test_every_bad_link_gets_the_same_plain_404(app, session, client, open_cycle, link):
    _ = open_cycle  # the link's own cycle stays open
    # another cycle, already closed, with its own links
    _, others = f.team(session, 3, prefix="U")
    closed = f.launched(session, others)
    other_link = f.token_for(session, others[0], "peer")
    cycles.close_cycle(session, closed)
    # a nomination link of a third cycle, still nominating
    _, nominees = f.team(session, 3, prefix="V")
    nominating = f.cycle(session, nominees, nomination_mode="participant")
    cycles.start_nominations(session, nominating, base_url=f.BASE_URL)
    session.commit()
    nomination_link = f.links(session, "n")[0]
    assert client.get(f"/n/{nomination_link}").status_code == 200  # it is live, but not here

    bad = {
        "forged": "A" * len(link),
        "truncated": link[:-1],
        "too long": link * 3,
        "wrong purpose": nomination_link,
    }
    bodies = {why: not_found_body(client.get(f"/s/{raw}")) for why, raw in bad.items()}
    bodies["typo in path"] = not_found_body(client.get("/s/"))
    # A real link of a closed cycle says so instead (test_a_closed_cycles_link_says_so).
    assert client.get(f"/s/{other_link}").status_code == 410

    reference = bodies.pop("forged")
    assert "This link is not valid" in reference
    for why, body in bodies.items():
        assert body == reference, why
    for raw in (*bad.values(), link):
        assert raw[:12] not in reference
    for detail in ("Traceback", "NotFound", "purpose", "closed cycle"):
        assert detail not in reference


def test_submitting_after_close_says_the_review_closed_and_stores_nothing(
    session, client, link, bank
):
    answer_everything(client, link, bank)
    cycle = assignment_of(session, link).cycle
    cycles.close_cycle(session, cycle)
    session.commit()
    late = post(client, link, action="submit", section=4)
    assert late.status_code == 410
    assert "This review has closed" in text_of(late)
    assert "No answers for T Member 1 were submitted from this link" in text_of(late)
    autosave = client.post(f"/s/{link}/autosave", data={})
    assert autosave.status_code == 410
    assert autosave.json == {"error": "This review has closed; answers can no longer be changed."}
    assert client.post(f"/s/{link}/decline").status_code == 410
    assert count_responses(session) == 0


def test_a_closed_cycles_link_says_whether_the_feedback_counts(session, client, link, bank):
    answer_everything(client, link, bank)
    assert post(client, link, action="submit", section=4).status_code == 302
    cycle = assignment_of(session, link).cycle
    cycles.close_cycle(session, cycle)
    session.commit()
    page = client.get(f"/s/{link}")
    assert page.status_code == 410
    text = text_of(page)
    assert f"“{cycle.name}” closed on" in text
    assert "Your feedback for T Member 1 was submitted before it closed and counts" in text
    assert "This link is not valid" not in text
    assert "Nothing more can be answered in this review." in text  # its own footer


# --- CSRF and a flaky database --------------------------------------------------------


def test_csrf_token_is_required_on_every_post(app, client, link, bank):
    app.config["WTF_CSRF_ENABLED"] = True
    item = f"r:{bank.competencies[0].items[0].id}"
    for url in (f"/s/{link}", f"/s/{link}/autosave", f"/s/{link}/decline"):
        assert client.post(url, data={item: "4", "action": "next"}).status_code == 400, url

    token = Page.of(client.get(f"/s/{link}")).hidden("csrf_token")
    reply = client.post(f"/s/{link}", data={item: "4", "action": "next", "csrf_token": token})
    assert reply.status_code == 302
    autosave = client.post(f"/s/{link}/autosave", data={item: "5", "csrf_token": token})
    assert autosave.status_code == 200

    stranger = client.application.test_client()  # a token from someone else's session
    assert stranger.post(f"/s/{link}", data={item: "1", "csrf_token": token}).status_code == 400


def test_autosave_reports_an_expired_session_as_json(app, client, link, bank):
    """survey.js reads JSON; an HTML 400 made it claim the rater was offline."""
    app.config["WTF_CSRF_ENABLED"] = True
    reply = client.post(f"/s/{link}/autosave", data={f"r:{bank.items[0].id}": "4"})
    assert reply.status_code == 400
    assert reply.json == {"error": "Your session expired; reload the page."}
    page = client.post(f"/s/{link}", data={"action": "next"})
    assert page.status_code == 400
    assert "session had expired" in text_of(page)  # the section again, not a dead end


def test_database_hiccup_on_submit_is_a_503_and_a_retry_succeeds(
    session, client, link, bank, monkeypatch
):
    answer_everything(client, link, bank)

    def lost_connection(*args, **kwargs):
        raise OperationalError("INSERT INTO responses", {}, Exception("server closed"))

    monkeypatch.setattr(responses, "_store_response", lost_connection)
    reply = post(client, link, action="submit", section=4)
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "5"
    assert "We couldn't save that just now" in text_of(reply)
    assert "server closed" not in reply.get_data(as_text=True)
    assert assignment_of(session, link).status == AssignmentStatus.IN_PROGRESS
    assert len(draft_of(session, link).answers) == len(bank.items)
    assert count_responses(session) == 0

    monkeypatch.undo()
    retry = post(client, link, action="submit", section=4)
    assert retry.status_code == 302
    assert "Thank you" in text_of(client.get(f"/s/{link}"))
    assert count_responses(session) == 1
    assert assignment_of(session, link).status == AssignmentStatus.SUBMITTED


def test_a_hiccup_on_submit_keeps_the_answers_posted_with_it(
    session, client, link, bank, monkeypatch
):
    """The final page's comment arrives with the submit itself: it must not be lost."""
    answer_everything(client, link, bank)
    keep = bank.open_questions[0].id

    def lost_connection(*args, **kwargs):
        raise OperationalError("INSERT INTO responses", {}, Exception("server closed"))

    monkeypatch.setattr(responses, "_store_response", lost_connection)
    reply = post(client, link, {f"c:{keep}": "Typed on the last page"}, action="submit", section=4)
    assert reply.status_code == 503
    assert draft_of(session, link).comments == {keep: "Typed on the last page"}
    assert count_responses(session) == 0


def test_a_connection_lost_halfway_through_storing_a_response_leaves_no_part_of_it(
    app, session, client, link, bank
):
    """The database fails after the response row is written, while its answers go in: the
    transaction is rolled back whole (no response without answers), the rater sees the
    retry message with the draft kept, and the retry stores it once."""
    from webapp.extensions import db

    answer_everything(client, link, bank)
    with app.app_context():
        engine = db.engine

    def fail_on_answers(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO response_items"):
            raise OperationalError(statement, {}, Exception("server closed the connection"))

    event.listen(engine, "before_cursor_execute", fail_on_answers)
    try:
        reply = post(client, link, action="submit", section=4)
    finally:
        event.remove(engine, "before_cursor_execute", fail_on_answers)
    assert reply.status_code == 503
    assert "We couldn't save that just now" in text_of(reply)
    session.expire_all()
    assert count_responses(session) == 0
    assert session.scalar(select(func.count()).select_from(ResponseItem)) == 0
    assert assignment_of(session, link).status == AssignmentStatus.IN_PROGRESS
    assert len(draft_of(session, link).answers) == len(bank.items)

    assert post(client, link, action="submit", section=4).status_code == 302
    assert count_responses(session) == 1
    assert session.scalar(select(func.count()).select_from(ResponseItem)) == len(bank.items)


def test_an_incomplete_submit_saves_the_answers_posted_with_it(session, client, link, bank):
    required = next(i for i in bank.competencies[0].items if i.required)
    keep = bank.open_questions[0].id
    reply = post(client, link, {f"c:{keep}": "Before I forget"}, action="submit", section=4)
    assert reply.status_code == 302
    assert "section=0" in reply.location
    assert "check=1" in reply.location
    assert draft_of(session, link).comments == {keep: "Before I forget"}
    assert NEEDS_ANSWER in Page.of(client.get(reply.location)).item(required.id).text
    assert assignment_of(session, link).status == AssignmentStatus.IN_PROGRESS
    assert count_responses(session) == 0


def test_a_cycle_closing_during_an_incomplete_submit_is_no_server_error(
    app, session, client, link, bank, monkeypatch
):
    """The submit found questions left, and before its answers were kept as the draft
    the cycle closed: the rater gets the closed link's page, not a 500."""
    from webapp.extensions import db

    def close_then_incomplete(*args, **kwargs):
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(update(Cycle).values(state=CycleState.CLOSED))
        raise responses.Incomplete("1 required question(s) still need an answer.")

    monkeypatch.setattr(responses, "submit", close_then_incomplete)
    reply = post(client, link, action="submit", section=4)
    assert reply.status_code == 302
    closed = client.get(reply.location)
    assert closed.status_code == 410
    assert "were submitted from this link before it closed, so none" in text_of(closed)
    assert count_responses(session) == 0


def test_a_submit_is_one_transaction_of_few_statements(app, session, client, link, bank):
    """Throughput guard: the submit path claims, reads the draft, inserts, deletes: no
    draft save first, no re-reading of what the link's query already loaded."""
    from sqlalchemy import event

    from webapp.extensions import db

    answer_everything(client, link, bank)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement.split(None, 1)[0].upper())

    keep = bank.open_questions[0].id
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        reply = post(client, link, {f"c:{keep}": "Thanks"}, action="submit", section=4)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert reply.status_code == 302
    assert count_responses(session) == 1
    assert session.scalars(select(ResponseComment.text)).all() == ["Thanks"]
    # token + claim + draft, then response, its answers, its comment, draft deleted
    assert statements == ["SELECT", "UPDATE", "SELECT", "INSERT", "INSERT", "INSERT", "DELETE"]


def test_lost_session_cookie_shows_the_posted_answers_again_with_a_fresh_token(app):
    """A phone restored the tab without its cookie: nothing is saved, nothing is lost."""
    from tests import factories as f
    from webapp.extensions import db

    # No app context held open here: requests must not share ``g`` (it caches CSRF tokens).
    with app.app_context():
        _, team = f.team(db.session, 4)
        f.launched(db.session, team)
        raw = f.token_for(db.session, team[0], "peer")
    app.config["WTF_CSRF_ENABLED"] = True
    first = app.test_client()
    page = first.get(f"/s/{raw}").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    bank_item = page.split('name="r:')[1].split('"')[0]
    fresh = app.test_client()  # no session cookie: the CSRF token no longer matches
    reply = fresh.post(
        f"/s/{raw}",
        data={
            "csrf_token": token,
            "section": "0",
            "action": "next",
            f"r:{bank_item}": "4",
            "c:strengths": "kept",
        },
    )
    body = reply.get_data(as_text=True)
    assert reply.status_code == 400
    assert "session had expired" in body
    assert f'name="r:{bank_item}" value="4" checked' in body
    new_token = body.split('name="csrf_token" value="')[1].split('"')[0]
    saved = fresh.post(
        f"/s/{raw}",
        data={"csrf_token": new_token, "section": "0", "action": "next", f"r:{bank_item}": "4"},
    )
    assert saved.status_code == 302
    again = app.test_client().get(f"/s/{raw}?section=0").get_data(as_text=True)
    assert f'name="r:{bank_item}" value="4" checked' in again


@pytest.mark.parametrize("tail", [".", ")", ").", ">", "%E2%80%9D", "%20"])
def test_a_link_pasted_with_the_sentences_punctuation_still_opens(client, link, tail):
    page = client.get(f"/s/{link}{tail}")
    assert page.status_code == 200
    assert 'id="survey"' in page.get_data(as_text=True)
