"""The survey page in a real browser: keyboard only, phone, no JavaScript, autosave and
resume on another device, submit confirmation, accessible names (issue 2, item 6).

Each test drives a freshly launched ``pulse`` cycle (4 competencies of 3 items, one
required item each, two open questions) through a live server with CSRF on.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pytest

from surveys.banks import get_bank
from tests.browser.conftest import SCREENSHOTS, saved_draft, seed_draft, stored_response

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect
if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

BANK = get_bank("pulse")
SECTIONS = len(BANK.competencies) + 1  # one per competency, then comments and submit
FINAL = SECTIONS - 1
REQUIRED = {item.id: 3 for item in BANK.items if item.required}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
THANKS = re.compile("your feedback has been submitted", re.I)


def item_texts(name: str) -> list[list[str]]:
    """Item wording a peer sees, per section."""
    return [[item.text("others", name) for item in c.items] for c in BANK.competencies]


def question_text(name: str) -> str:
    return BANK.open_questions[0].text("others", name)


def option(page: Page, item_text: str, label: str):
    """The radio for ``label`` inside the item whose fieldset is named ``item_text``."""
    return page.get_by_role("group", name=item_text).get_by_role("radio", name=label, exact=True)


def comment_box(page: Page, participant: str):
    return page.get_by_role("textbox", name=question_text(participant))


def focused(page: Page) -> dict:
    return page.evaluate(
        """() => { const e = document.activeElement;
                   return {tag: e.tagName, type: e.type || '', name: e.name || '',
                           value: e.value || '', text: (e.textContent || '').trim()}; }"""
    )


def tab_until(page: Page, matches, limit: int = 40) -> dict:
    """Press Tab until the focused element satisfies ``matches``; fail after ``limit``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        element = focused(page)
        if matches(element):
            return element
    pytest.fail(f"Tab never reached the expected element (last: {element})")


def is_radio(element: dict) -> bool:
    return element["type"] == "radio"


def is_button(label: str):
    return lambda e: e["tag"] == "BUTTON" and e["text"] == label


# -- keyboard only -----------------------------------------------------------------------


def test_keyboard_only_completes_the_survey(page, survey, live_server):
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm; Enter would do too
    page.goto(survey.peer)
    per_section = [len(c.items) for c in BANK.competencies]

    for section, count in enumerate(per_section):
        expect(page.locator("#progress-label")).to_contain_text(f"Section {section + 1} of")
        for n in range(count):
            radio = tab_until(page, is_radio)
            assert radio["value"] == "1", "Tab should enter each unanswered group at its start"
            if section == 0 and n == 0:
                assert_focus_is_visible(page)
            page.keyboard.press("Space")  # 1
            for _ in range(3):
                page.keyboard.press("ArrowRight")  # arrows move and select: 4 = Agree
            assert page.evaluate("document.activeElement.checked")
        tab_until(page, is_button("Save and continue"))
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"section={section + 1}\b"))
        # Focus starts at the new section's heading, not back at the top of the page.
        expect(page.locator("h2.section-title")).to_be_focused()

    tab_until(page, lambda e: e["tag"] == "TEXTAREA")
    page.keyboard.type("Typed without a mouse.")
    tab_until(page, is_button("Submit my feedback"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=THANKS)).to_be_visible()

    stored = stored_response(live_server, survey.peer)
    assert stored is not None
    assert stored.ratings == {item.id: 4 for item in BANK.items}
    assert stored.comments == {BANK.open_questions[0].id: "Typed without a mouse."}


def assert_focus_is_visible(page: Page) -> None:
    """The focused radio, or the option card around it, shows a visible focus ring."""
    ring = page.evaluate(
        """() => {
          const shown = (el) => { const s = getComputedStyle(el);
            return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2)
                   || (s.boxShadow && s.boxShadow !== 'none'); };
          const input = document.activeElement;
          return {input: shown(input), card: shown(input.closest('label'))};
        }"""
    )
    assert ring["input"] or ring["card"], "no visible focus style on a keyboard-focused radio"


# -- phone -------------------------------------------------------------------------------


def test_phone_layout_and_submit(context_factory, survey, live_server):
    page = context_factory(**PHONE).new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(survey.peer)
    page.screenshot(path=str(SCREENSHOTS / "survey-phone.png"), full_page=True)

    for section, texts in enumerate(item_texts(survey.participant)):
        assert_fits_phone(page)
        for text in texts:
            option(page, text, "Strongly agree").tap()
            expect(option(page, text, "Strongly agree")).to_be_checked()
        page.get_by_role("button", name="Save and continue").tap()
        page.wait_for_url(re.compile(rf"section={section + 1}\b"))

    assert_fits_phone(page)
    comment_box(page, survey.participant).fill("From my phone")
    page.screenshot(path=str(SCREENSHOTS / "survey-phone-final.png"), full_page=True)
    page.get_by_role("button", name="Submit my feedback").tap()
    expect(page.get_by_role("heading", name=THANKS)).to_be_visible()
    assert_fits_phone(page)
    assert stored_response(live_server, survey.peer).comments == {"keep_doing": "From my phone"}


def assert_fits_phone(page: Page) -> None:
    width, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width <= inner, f"horizontal scrolling on a phone: {width}px content in {inner}px"
    small = page.evaluate(
        """() => [...document.querySelectorAll('.option, form button, .actions a')]
                 .map(e => [e.textContent.trim().slice(0, 30), e.getBoundingClientRect()])
                 .filter(([, r]) => r.height < 44 || r.width < 44)
                 .map(([t, r]) => `${t}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""
    )
    assert not small, f"tap targets under 44 px: {small}"


# -- without JavaScript ------------------------------------------------------------------


def test_works_without_javascript(context_factory, survey, live_server):
    page = context_factory(java_script_enabled=False).new_page()
    page.goto(survey.peer)

    for section, texts in enumerate(item_texts(survey.participant)):
        option(page, texts[0], "Disagree").click()
        option(page, texts[-1], BANK.scale.na_label).click()
        page.get_by_role("button", name="Save and continue").click()
        page.wait_for_url(re.compile(rf"section={section + 1}\b"))

    expect(page.get_by_text("You have answered 8 of 12")).to_be_visible()
    # Going back shows what was saved on the server.
    page.get_by_role("button", name="Back", exact=True).click()
    first = item_texts(survey.participant)[-1][0]
    expect(option(page, first, "Disagree")).to_be_checked()
    page.get_by_role("button", name="Save and continue").click()

    comment_box(page, survey.participant).fill("No JS needed")
    page.get_by_role("button", name="Submit my feedback").click()  # no confirm without JS
    expect(page.get_by_role("heading", name=THANKS)).to_be_visible()
    stored = stored_response(live_server, survey.peer)
    assert len(stored.ratings) == 8
    assert stored.comments == {"keep_doing": "No JS needed"}


def test_save_for_later_without_javascript_stays_put(context_factory, survey, live_server):
    page = context_factory(java_script_enabled=False).new_page()
    page.goto(survey.peer)
    text = item_texts(survey.participant)[0][1]
    option(page, text, "Agree").click()
    page.get_by_role("button", name="Save for later").click()
    expect(option(page, text, "Agree")).to_be_checked()
    expect(page.locator("#progress-label")).to_contain_text("Section 1 of")
    assert saved_draft(live_server, survey.peer).ratings == {BANK.items[1].id: 4}


# -- autosave and resume -----------------------------------------------------------------


def test_autosave_then_resume_on_another_device(context_factory, survey, live_server):
    laptop = context_factory().new_page()
    laptop.goto(f"{survey.peer}?section=0")
    texts = item_texts(survey.participant)[0]
    status = laptop.get_by_role("status")
    for text, label in zip(texts, ["Agree", "Disagree", "Strongly agree"], strict=True):
        option(laptop, text, label).click()
    expect(status).to_have_text(re.compile("All changes saved"))

    laptop.goto(f"{survey.peer}?section={FINAL}")
    box = comment_box(laptop, survey.participant)
    box.click()
    laptop.keyboard.type("Saved while typing")
    expect(status).to_have_text(re.compile("All changes saved"), timeout=8_000)

    phone = context_factory(**PHONE).new_page()  # no cookies shared with the laptop
    phone.goto(f"{survey.peer}?section=0")
    for text, label in zip(texts, ["Agree", "Disagree", "Strongly agree"], strict=True):
        expect(option(phone, text, label)).to_be_checked()
    phone.goto(f"{survey.peer}?section={FINAL}")
    expect(comment_box(phone, survey.participant)).to_have_value("Saved while typing")


def test_status_does_not_claim_saved_while_typing(context_factory, survey, live_server):
    """'All changes saved' must not stay on screen while newer typing is still unsaved."""
    page = context_factory().new_page()
    page.goto(f"{survey.peer}?section={FINAL}")
    status = page.get_by_role("status")
    box = comment_box(page, survey.participant)
    box.click()
    page.keyboard.type("first")
    expect(status).to_have_text(re.compile("All changes saved"), timeout=8_000)
    page.keyboard.type(", then more")
    expect(status).not_to_have_text(re.compile("All changes saved"), timeout=1_000)
    expect(status).to_have_text(re.compile("All changes saved"), timeout=8_000)
    assert saved_draft(live_server, survey.peer).comments == {"keep_doing": "first, then more"}


def test_leaving_the_page_saves_pending_typing(context_factory, survey, live_server):
    page = context_factory().new_page()
    page.goto(f"{survey.peer}?section={FINAL}")
    comment_box(page, survey.participant).fill("typed, then the tab was closed")
    page.goto("about:blank")  # leave before the typing pause triggers an autosave
    for _ in range(50):
        if saved_draft(live_server, survey.peer).comments:
            break
        time.sleep(0.1)
    assert saved_draft(live_server, survey.peer).comments == {
        "keep_doing": "typed, then the tab was closed"
    }


def test_typing_then_reloading_at_once_keeps_the_typing(context_factory, survey, live_server):
    """A reload can be served before the leaving page's last save arrives (here it never
    does): the page puts the typing back from the tab's own copy and saves it again."""
    page = context_factory().new_page()
    page.goto(f"{survey.peer}?section={FINAL}")
    comment_box(page, survey.participant).fill("typed, then reloaded at once")
    page.route("**/autosave", lambda route: route.abort())
    page.reload()
    expect(comment_box(page, survey.participant)).to_have_value("typed, then reloaded at once")
    page.unroute("**/autosave")
    comment_box(page, survey.participant).press("End")
    page.keyboard.type("!")
    expect(page.get_by_role("status")).to_have_text(re.compile("All changes saved"), timeout=8_000)
    assert saved_draft(live_server, survey.peer).comments == {
        "keep_doing": "typed, then reloaded at once!"
    }
    # Nothing is put back once it is saved: a later reload shows the server's copy.
    page.reload()
    expect(comment_box(page, survey.participant)).to_have_value("typed, then reloaded at once!")
    assert page.evaluate("Object.keys(sessionStorage).length") == 0


def test_a_comment_too_long_is_counted_and_named_where_it_is(context_factory, survey, live_server):
    """The server refuses a comment over the limit: the page counts while it is typed,
    says next to the box that it was not saved, and the buttons stay put meanwhile (on a
    phone, where the status wraps)."""
    page = context_factory(**PHONE).new_page()
    page.goto(f"{survey.peer}?section={FINAL}")
    box = comment_box(page, survey.participant)
    count = page.locator("#q-keep_doing-input-count")
    expect(count).to_be_hidden()  # nothing to say far from the limit
    box.fill("אבג 😀 " * 1_700)  # 10,199 characters as the server counts them (emoji: 1)
    expect(count).to_have_text("10,199 of 10,000 characters: please shorten it by 199 to save it.")
    status = page.get_by_role("status")
    expect(status).to_have_text(
        "Saved, except one answer: see the message next to it.", timeout=8_000
    )
    # The count is that message: no second one is added above the box later (it would
    # push the buttons down once more, under the pointer).
    expect(page.locator("#q-keep_doing .field-error")).to_have_count(0)
    assert saved_draft(live_server, survey.peer).comments == {}
    # Scrolled to the end, as when reaching for "Submit": a shorter status would shorten
    # the page and pull the button away under the pointer.
    page.evaluate("scrollTo(0, document.body.scrollHeight)")
    submit = page.get_by_role("button", name="Submit my feedback")
    before = submit.bounding_box()
    box.evaluate("b => { b.value += 'x'; b.dispatchEvent(new Event('input', {bubbles: true})); }")
    expect(status).to_have_text("Unsaved changes…")
    assert submit.bounding_box() == before

    box.fill("Short enough")
    expect(count).to_be_hidden()
    expect(status).to_have_text("All changes saved.", timeout=8_000)
    expect(page.locator("#q-keep_doing .field-error")).to_have_count(0)
    assert saved_draft(live_server, survey.peer).comments == {"keep_doing": "Short enough"}


# -- submit confirmation -----------------------------------------------------------------


def test_submit_asks_for_confirmation(page, survey, live_server):
    seed_draft(live_server, survey.peer, REQUIRED)
    page.goto(survey.peer)  # resumes on the first section with unanswered items
    page.goto(f"{survey.peer}?section={FINAL}")
    submit = page.get_by_role("button", name="Submit my feedback")

    messages = []
    page.once("dialog", lambda d: (messages.append((d.type, d.message)), d.dismiss()))
    submit.click()
    page.wait_for_timeout(300)
    assert messages
    assert messages[0][0] == "confirm"
    assert "cannot change" in messages[0][1]
    expect(submit).to_be_enabled()
    expect(page.get_by_role("heading", name=THANKS)).to_have_count(0)
    assert stored_response(live_server, survey.peer) is None

    page.once("dialog", lambda d: d.accept())
    submit.click()
    expect(page.get_by_role("heading", name=THANKS)).to_be_visible()
    assert stored_response(live_server, survey.peer).ratings == REQUIRED

    page.goto(survey.peer)
    expect(page.get_by_role("heading", name=THANKS)).to_be_visible()
    expect(page.locator("form#survey")).to_have_count(0)
    page.go_back()
    page.reload()
    expect(page.get_by_role("heading", name=THANKS)).to_be_visible()


# -- accessibility -----------------------------------------------------------------------


def test_every_control_has_an_accessible_name(page, survey):
    for section, texts in enumerate(item_texts(survey.participant)):
        page.goto(f"{survey.peer}?section={section}")
        fieldsets = page.locator("fieldset.item")
        expect(fieldsets).to_have_count(len(texts))
        for i, text in enumerate(texts):
            group = fieldsets.nth(i)
            expect(group).to_have_role("group")
            expect(group).to_have_accessible_name(re.compile(re.escape(text)))
            for label in [*BANK.scale.labels.values(), BANK.scale.na_label]:
                expect(group.get_by_role("radio", name=label, exact=True)).to_have_count(1)
        radios = page.get_by_role("radio")
        expect(radios).to_have_count(len(texts) * (len(BANK.scale.labels) + 1))
        for radio in radios.all():
            expect(radio).to_have_accessible_name(re.compile(r"\w"))
    page.goto(f"{survey.peer}?section={FINAL}")
    box = comment_box(page, survey.participant)
    expect(box).to_have_count(1)
    expect(box).to_have_accessible_description(re.compile("word for word"))


def test_failed_validation_focuses_the_error_summary(page, survey):
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{survey.peer}?section={FINAL}")
    page.get_by_role("button", name="Submit my feedback").click()

    page.wait_for_url(re.compile(r"check=1"))
    summary = page.get_by_role("alert").filter(has_text="Please check")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    first = next(i for i in BANK.competencies[0].items if i.required)
    group = page.get_by_role("group", name=first.text("others", survey.participant))
    expect(group).to_have_accessible_description(re.compile("needs an answer"))
    page.screenshot(path=str(SCREENSHOTS / "survey-desktop-errors.png"), full_page=True)
    # The summary links to every missing answer, also those in other sections.
    links = summary.get_by_role("link")
    expect(links).to_have_count(len(REQUIRED))
    links.nth(1).click()
    expect(page.locator("#progress-label")).to_contain_text("Section 2 of")
    later = next(i for i in BANK.competencies[1].items if i.required)
    expect(
        page.get_by_role("group", name=later.text("others", survey.participant))
    ).to_have_accessible_description(re.compile("needs an answer"))


def test_server_side_errors_without_javascript(context_factory, survey):
    page = context_factory(java_script_enabled=False).new_page()
    page.goto(f"{survey.peer}?section={FINAL}")
    comment_box(page, survey.participant).fill("a" * 10_001)
    page.get_by_role("button", name="Save for later").click()
    summary = page.get_by_role("alert").filter(has_text="Please check")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()  # autofocus, no script needed
    box = comment_box(page, survey.participant)
    expect(box).to_have_accessible_description(re.compile("10,000 characters or fewer"))
    expect(box).to_have_value("a" * 10_001)  # nothing the rater typed is lost


def test_desktop_screenshot(page, survey, live_server):
    """Screenshots for a human look (in the screenshots folder), of a page that resumes a
    draft and takes arrow keys."""
    seed_draft(live_server, survey.peer, {BANK.items[0].id: 4})
    page.goto(f"{survey.peer}?section=0")
    first = BANK.items[0].text("others", survey.participant)
    expect(option(page, first, "Agree")).to_be_checked()  # the draft, resumed
    page.get_by_role("radio").nth(9).focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("radio").nth(10)).to_be_checked()
    page.screenshot(path=str(SCREENSHOTS / "survey-desktop.png"), full_page=True)
    page.goto(f"{survey.peer}?section={FINAL}")
    expect(page.get_by_role("button", name="Submit my feedback")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "survey-desktop-final.png"), full_page=True)
    assert (SCREENSHOTS / "survey-desktop-final.png").stat().st_size > 10_000


def test_without_a_connection_nothing_is_lost_and_submit_waits(
    context_factory, survey, live_server
):
    """The server can't be reached: the page says its answers are not saved, keeps
    trying, and holds a Submit back (sent, it would end on the browser's error page with
    the typing gone); once the server answers again the answers are saved."""
    seed_draft(live_server, survey.peer, REQUIRED)
    page = context_factory().new_page()
    page.goto(f"{survey.peer}?section={FINAL}")
    page.route("**/autosave", lambda route: route.abort("connectionrefused"))
    comment_box(page, survey.participant).fill("Typed while the server was away")
    status = page.get_by_role("status")
    expect(status).to_have_text(re.compile("Not saved: no connection"), timeout=8_000)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    page.get_by_role("button", name="Submit my feedback").click()
    expect(status).to_have_text(re.compile("No connection: nothing was sent"))
    assert len(dialogs) == 1  # confirmed, then held back: nothing was sent
    assert stored_response(live_server, survey.peer) is None
    expect(comment_box(page, survey.participant)).to_have_value("Typed while the server was away")

    page.unroute("**/autosave")  # the server is back: the next try saves
    expect(status).to_have_text("All changes saved.", timeout=12_000)
    assert saved_draft(live_server, survey.peer).comments == {
        "keep_doing": "Typed while the server was away"
    }
    page.get_by_role("button", name="Submit my feedback").click()
    expect(page.get_by_role("heading", name=THANKS)).to_be_visible()
    assert stored_response(live_server, survey.peer) is not None
