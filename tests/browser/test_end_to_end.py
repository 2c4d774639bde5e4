"""The whole review cycle as people live it, in a real browser (issue #6 §4).

HR signs in, uploads the org chart and sets up a cycle in which participants nominate
their peers and managers approve; the participant nominates from the link in their
email, the manager approves from theirs; the raters answer from their emails (one on a
phone, one with the keyboard only, one who saves, leaves and comes back later); HR closes
the cycle and releases; the participant reads the report and downloads the PDF.

Every email goes through a real SMTP server on 127.0.0.1 and every link used comes out
of an email. Only what people do is driven: the checks read the pages, the emails and
the PDF, never the database.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from surveys.banks import get_bank
from surveys.db import utcnow
from tests.browser.conftest import SCREENSHOTS
from tests.browser.e2e_support import (
    HR_EMAIL,
    HR_PASSWORD,
    ORG_CSV,
    ORG_SIZE,
    PHONE,
    Mailbox,
    answer_section,
    comment_box,
    create_hr_account,
    fits_phone,
    is_button,
    item_texts,
    keyboard_section,
    next_section,
    numbers,
    one_line,
    option,
    pdf_text,
    scratch_postgres,
    serve_app,
    sqlite_url,
    submit,
    tab_until,
    thanks,
)

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect
if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BANK = get_bank("pulse")
SECTIONS = len(BANK.competencies)
CYCLE = "Spring review 2027"
PARTICIPANT = "Pat Participant"
PAT, MARIA = "pat@example.com", "maria@example.com"
ALICE, BRUNO, CHEN = "alice@example.com", "bruno@example.com", "chen@example.com"
HR_MESSAGE = "Thank you for taking part: ten honest minutes help Pat grow."
INVITE = f"Your feedback for {PARTICIPANT} is requested"
#: Milliseconds to wait for a page that scores the cycle or renders a report.
SLOW = 20_000

#: What each rater answers to every statement (1 = Strongly disagree … 5 = Strongly agree).
SELF, MANAGER, PHONE_PEER, KEYBOARD_PEER, LATER_PEER = 5, 2, 5, 4, 3
PEERS = (PHONE_PEER + KEYBOARD_PEER + LATER_PEER) / 3  # 4.0
ALL_OTHERS = (MANAGER + PHONE_PEER + KEYBOARD_PEER + LATER_PEER) / 4  # 3.5
COMMENTS = {
    "self": "I keep the release notes readable.",
    "manager": "Always prepared for the planning meeting.",
    "phone": "Explains incidents calmly, even at night.",
    "keyboard": "Typed without a mouse: reviews are thorough.",
    "later": "Pairs generously with new starters.",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database of the story's own: a SQLite file, or PostgreSQL (the production
    profile) when TEST_DATABASE_URL points at a server."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with scratch_postgres() as url:
        yield url


@pytest.fixture
def server(smtp_server, database_url):
    """The app on its own empty database, mailing to the local SMTP server."""
    with serve_app(database_url, smtp_server.url) as live:
        create_hr_account(live)  # accounts are made on the command line, not in a browser
        yield live


@pytest.fixture
def mail(smtp_server, server) -> Mailbox:
    return Mailbox(smtp_server, server.url)


@pytest.fixture
def new_context(context_factory):
    """Browser contexts that wait up to ``SLOW`` for a page (CI machines are busy)."""

    def make(**options):
        context = context_factory(**options)
        context.set_default_timeout(SLOW)
        return context

    return make


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"e2e-{name}.png"), full_page=True)


def flash(page: Page, text: str) -> None:
    expect(page.get_by_role("alert").filter(has_text=text)).to_be_visible(timeout=SLOW)


def test_a_review_cycle_from_org_chart_to_pdf(server, mail, new_context):
    hr = new_context().new_page()
    sign_in(hr, server.url)
    import_org_chart(hr)
    cycle_url = set_up_and_open_nominations(hr)

    nominate_peers(new_context(), mail)
    approve_as_manager(new_context(), mail)
    open_the_surveys(hr, server, cycle_url)
    assert HR_MESSAGE in mail.wait_for(BRUNO, INVITE).get_content()  # HR's words, step 6

    rate_with_the_mouse(new_context(), mail.link(PAT, "self-assessment", "s"), "self")
    rate_with_the_mouse(new_context(), mail.link(MARIA, INVITE, "s"), "manager")
    rate_on_a_phone(new_context(**PHONE), mail.link(ALICE, INVITE, "s"))
    rate_with_the_keyboard(new_context(), mail.link(BRUNO, INVITE, "s"))
    later = mail.link(CHEN, INVITE, "s")
    start_and_save_for_later(new_context(), later)
    resume_and_submit(new_context(), later)
    assert not mail.to("dana@example.com"), "the manager took Dana off the list"

    close_and_release(hr, cycle_url)
    read_the_report(new_context(), mail)


# -- HR: console, org chart, set-up wizard ------------------------------------------------


def sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/admin/")  # the console sends a visitor to the sign-in page
    expect(page.get_by_role("heading", name="Sign in to the HR console")).to_be_visible()
    page.get_by_label("Email").fill(HR_EMAIL)
    page.get_by_label("Password").fill(HR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Console")).to_be_visible()


def import_org_chart(page: Page) -> None:
    """Upload the CSV on the People page, check the preview, apply it."""
    page.get_by_role("navigation", name="Console").get_by_role("link", name="People").click()
    expect(page.get_by_role("heading", name="People", exact=True)).to_be_visible()
    page.get_by_label("Employees CSV file").set_input_files(
        files=[{"name": "org-chart.csv", "mimeType": "text/csv", "buffer": ORG_CSV.encode()}]
    )
    page.get_by_role("button", name="Preview import").click()

    expect(page.get_by_role("heading", name="Import preview: org-chart.csv")).to_be_visible()
    expect(page.get_by_role("heading", name=f"To add ({ORG_SIZE})")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("^Rejected"))).to_have_count(0)
    expect(page.get_by_role("cell", name="Pat Participant", exact=True)).to_be_visible()
    shot(page, "people-preview")
    page.get_by_role("button", name="Apply import").click()

    flash(page, f"Imported org-chart.csv: {ORG_SIZE} added, 0 changed, 0 unchanged.")
    expect(page.get_by_text(f"{ORG_SIZE} people", exact=True)).to_be_visible()
    expect(page.get_by_role("rowheader", name="Maria Manager")).to_be_visible()


def save_and_continue(page: Page, next_step: str) -> None:
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("heading", name=next_step, exact=True)).to_be_visible()


def set_up_and_open_nominations(page: Page) -> str:
    """Every step of the wizard, then the one confirmed action; returns the cycle's URL."""
    page.get_by_role("navigation", name="Console").get_by_role("link", name="New cycle").click()
    expect(page.get_by_role("heading", name="Set up a review cycle")).to_be_visible()
    page.get_by_label("Cycle name").fill(CYCLE)
    page.get_by_label("Question bank").select_option("pulse")
    page.get_by_label("Language of the survey").select_option("en")
    page.get_by_role("button", name="Create draft and continue").click()

    expect(page.get_by_role("heading", name="Participants", exact=True)).to_be_visible()
    page.get_by_role("radio", name="People I pick").check()
    page.get_by_label("Filter by name, id, email or department").fill("Pat")
    page.get_by_role("checkbox", name=re.compile(f"^{PARTICIPANT}")).check()
    save_and_continue(page, "Nominations")

    page.get_by_role("radio", name="Each participant nominates their peers").check()
    page.get_by_label("The manager approves the nominations").check()
    page.get_by_label("Fewest peers per participant").fill("3")
    page.get_by_label("Most peers per participant").fill("4")
    page.get_by_label("Participants rate themselves").check()
    page.get_by_label("Their manager rates them").check()
    page.get_by_label("Show the manager's answers as their own group in reports").check()
    save_and_continue(page, "Anonymity")

    # Three peers must answer before their group is shown; the manager is shown alone.
    page.get_by_label("Peers", exact=True).fill("3")
    page.get_by_label("Manager", exact=True).fill("1")
    page.get_by_label("All others (everyone but self, combined)").fill("3")
    save_and_continue(page, "Dates and reminders")

    today = utcnow().date()
    page.get_by_label("Nomination deadline").fill((today + timedelta(days=7)).isoformat())
    page.get_by_label("Close date").fill((today + timedelta(days=21)).isoformat())
    save_and_continue(page, "Email texts")

    page.get_by_label("Your message").fill(HR_MESSAGE)
    save_and_continue(page, "Review and launch")

    expect(page.get_by_role("alert")).to_have_count(0)  # no problems listed
    summary = page.locator("dl")
    expect(summary).to_contain_text("Participants nominate their peers, approved by their manager")
    expect(summary).to_contain_text(PARTICIPANT)
    expect(summary).to_contain_text("Peers 3")
    page.get_by_label("I have checked the summary: send the emails now").check()
    shot(page, "wizard-review")
    page.get_by_role("button", name="Open nominations").click()

    flash(page, "Nominations are open: 1 participant")
    expect(page.get_by_role("heading", name=CYCLE, level=1)).to_be_visible()
    return page.url.split("#")[0]


# -- nominations: from the emails -----------------------------------------------------------


def nominate_peers(context: BrowserContext, mail: Mailbox) -> None:
    """Pat searches the colleagues of the department and nominates four of them."""
    email = mail.wait_for(PAT, f'Choose who gives you feedback in "{CYCLE}"')
    assert HR_MESSAGE in email.get_content()
    page = context.new_page()
    page.goto(mail.link(PAT, "Choose who gives you feedback", "n"))
    expect(page.get_by_role("heading", name="Who should give you feedback?")).to_be_visible()

    page.get_by_label("Search colleagues by name, email or department").fill("Platform")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("checkbox", name=re.compile("Sky Seller"))).to_have_count(0)
    for name in ("Alice Andersen", "Bruno Barros", "Chen Cheng", "Dana Doyle"):
        page.get_by_role("checkbox", name=re.compile(name)).check()
    expect(page.get_by_role("checkbox", name=re.compile("Maria Manager"))).to_have_count(0)
    shot(page, "nominate")
    page.get_by_role("button", name="Send my nominations").click()
    flash(page, "your nominations were sent to your manager for approval")


def approve_as_manager(context: BrowserContext, mail: Mailbox) -> None:
    """Maria sees Pat's four, takes one off and approves the other three."""
    page = context.new_page()
    page.goto(mail.link(MARIA, f"Please approve feedback nominations for {PARTICIPANT}", "a"))
    expect(page.get_by_role("heading", name=f"Raters for {PARTICIPANT}")).to_be_visible()
    for name in ("Alice Andersen", "Bruno Barros", "Chen Cheng", "Dana Doyle"):
        expect(page.get_by_role("checkbox", name=re.compile(name))).to_be_checked()
    page.get_by_role("checkbox", name=re.compile("Dana Doyle")).uncheck()
    page.get_by_role("button", name="Approve this list").click()
    flash(page, f"Approved 3 raters for {PARTICIPANT}.")


def open_the_surveys(page: Page, server, cycle_url: str) -> None:
    """HR sees the approved list, then opens the rating phase."""
    page.goto(cycle_url)
    page.get_by_role("link", name="Nominations", exact=True).click()
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=PARTICIPANT))
    expect(row).to_contain_text("approved")
    expect(row).to_contain_text("Chen Cheng")
    page.goto(cycle_url)
    page.get_by_label("Yes, open the surveys now").check()
    page.get_by_role("button", name="Open the surveys").click()
    expect(page.get_by_text("The surveys are open: 5 raters emailed their links.")).to_be_visible()
    expect(page.get_by_text("All raters: 0 of 5 answered (0%)")).to_be_visible()


# -- raters: from the emails ----------------------------------------------------------------


def survey_page(context: BrowserContext, link: str) -> Page:
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "Submit your feedback now?"
    page.goto(link)
    return page


def rate_with_the_mouse(context: BrowserContext, link: str, who: str) -> None:
    """Self or manager on a desktop: every statement gets the same answer, one comment."""
    role = "self" if who == "self" else "others"
    value = SELF if who == "self" else MANAGER
    page = survey_page(context, link)
    for section, texts in enumerate(item_texts(BANK, role, PARTICIPANT)):
        answer_section(page, texts, BANK.scale.labels[value])
        next_section(page, section)
    comment_box(page, BANK, role, PARTICIPANT).fill(COMMENTS[who])
    submit(page)


def rate_on_a_phone(context: BrowserContext, link: str) -> None:
    page = survey_page(context, link)
    label = BANK.scale.labels[PHONE_PEER]
    for section, texts in enumerate(item_texts(BANK, "others", PARTICIPANT)):
        fits_phone(page)
        answer_section(page, texts, label, tap=True)
        if section == 0:
            shot(page, "survey-phone")
        next_section(page, section, tap=True)
    comment_box(page, BANK, "others", PARTICIPANT).fill(COMMENTS["phone"])
    fits_phone(page)
    submit(page, tap=True)
    fits_phone(page)


def rate_with_the_keyboard(context: BrowserContext, link: str) -> None:
    """Tab, Space, arrows and Enter only: never a click."""
    page = survey_page(context, link)
    for section, competency in enumerate(BANK.competencies):
        keyboard_section(page, len(competency.items), KEYBOARD_PEER)
        page.wait_for_url(re.compile(rf"section={section + 1}\b"))
    tab_until(page, lambda e: e["tag"] == "TEXTAREA")
    page.keyboard.type(COMMENTS["keyboard"])
    tab_until(page, is_button("Submit my feedback"))
    page.keyboard.press("Enter")
    expect(thanks(page)).to_be_visible()


def start_and_save_for_later(context: BrowserContext, link: str) -> None:
    """Chen answers the first section, presses "Save for later" and closes the browser."""
    page = survey_page(context, link)
    texts = item_texts(BANK, "others", PARTICIPANT)[0]
    answer_section(page, texts, BANK.scale.labels[LATER_PEER])
    page.get_by_role("button", name="Save for later").click()
    expect(page.get_by_role("progressbar")).to_have_accessible_name(re.compile("^Section 1 of"))
    context.close()


def resume_and_submit(context: BrowserContext, link: str) -> None:
    """Later, on another device (no shared cookies): the saved answers are there."""
    page = survey_page(context, link)
    progress = page.get_by_role("progressbar")
    expect(progress).to_have_accessible_name(re.compile("^Section 2 of"))  # where Chen stopped
    page.get_by_role("button", name="Back", exact=True).click()
    expect(progress).to_have_accessible_name(re.compile("^Section 1 of"))
    label = BANK.scale.labels[LATER_PEER]
    texts = item_texts(BANK, "others", PARTICIPANT)
    for text in texts[0]:
        expect(option(page, text, label)).to_be_checked()
    next_section(page, 0)
    for section in range(1, SECTIONS):
        answer_section(page, texts[section], label)
        next_section(page, section)
    comment_box(page, BANK, "others", PARTICIPANT).fill(COMMENTS["later"])
    submit(page)


# -- HR: close and release ------------------------------------------------------------------


def close_and_release(page: Page, cycle_url: str) -> None:
    page.goto(cycle_url)
    expect(page.get_by_text("All raters: 5 of 5 answered (100%)")).to_be_visible()
    page.get_by_label("Yes, close the cycle now").check()
    page.get_by_role("button", name="Close the cycle").click()
    flash(page, "The cycle is closed with 5 responses.")

    page.get_by_role("link", name="Scores, previews and release").click()
    expect(page.get_by_role("heading", name="Release the reports")).to_be_visible(timeout=SLOW)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=PARTICIPANT))
    expect(row).to_contain_text("Peers (3)")
    page.get_by_role("link", name=f"Preview {PARTICIPANT}'s report").click()
    report = page.get_by_role("heading", name=f"Feedback report for {PARTICIPANT}")
    expect(report).to_be_visible(timeout=SLOW)
    expect(page.get_by_text("Preview: not a released version")).to_be_visible()
    page.go_back()

    page.get_by_label("Yes, release every report now").check()
    shot(page, "release")
    page.get_by_role("button", name="Release to all 1 participant").click()
    flash(page, "Released 1 report")
    expect(page.get_by_role("heading", name="Released reports")).to_be_visible()


# -- the participant reads the report -------------------------------------------------------


def read_the_report(context: BrowserContext, mail: Mailbox) -> None:
    page = context.new_page()
    page.goto(mail.link(PAT, "Your feedback report", "r"))
    report = page.get_by_role("heading", name=f"Feedback report for {PARTICIPANT}")
    expect(report).to_be_visible(timeout=SLOW)
    shot(page, "report")

    overview = page.get_by_role("table").filter(has_text="Adjusted (interval)")
    first = overview.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=BANK.competencies[0].title)
    )
    cells = [one_line(c) for c in first.get_by_role("cell").all_inner_texts()]
    assert cells[0] == f"{SELF:.1f}", cells
    assert f"{MANAGER:.1f} (n=1)" in cells, cells
    assert f"{PEERS:.1f} (n=3)" in cells, cells
    assert f"{ALL_OTHERS:.1f} (n=4)" in cells, cells

    text = one_line(page.locator("main").inner_text())
    for comment in (COMMENTS["phone"], COMMENTS["keyboard"], COMMENTS["later"]):
        assert comment in text
    for rater in ("Maria", "Alice", "Bruno", "Chen"):
        assert rater not in text, f"a rater's name ({rater}) is on the report"

    with page.expect_download(timeout=60_000) as started:
        page.get_by_role("link", name="Download as PDF").click()
    download = started.value
    assert download.suggested_filename == f"feedback-report-{CYCLE.replace(' ', '_')}.pdf"
    pdf = one_line(pdf_text(Path(download.path()).read_bytes()))
    assert PARTICIPANT in pdf
    shown = Counter(numbers(one_line(overview.inner_text())))
    assert sum(shown.values()) >= 5 * len(BANK.competencies), shown
    missing = shown - Counter(numbers(pdf))
    assert not missing, f"numbers of the report page missing from the PDF: {missing}"
    assert COMMENTS["later"] in pdf
