"""The consent page as a person reads it, in Chromium: the text's list is a list, the sentence saying
that copies used in training cannot be recalled stands out, every licence says in one line what it
means, and the "if yes" choices appear once Yes is chosen; without JavaScript they are all there
from the start and the form works the same."""
from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.test_browser_flows import new_person

LICENCES = ("CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0")


def check_text_structure(page: Page) -> None:
    text = page.locator("#consent-text")
    points = text.locator("ul > li")
    expect(points).to_have_count(6)
    expect(points.first).to_contain_text("You choose the licence")
    warning = text.locator("li strong.irrevocable")
    expect(warning).to_have_count(1)
    expect(warning).to_have_text(
        "Copies that a researcher has already used to train a model cannot be recalled from that model.")
    # It stands out: a block of its own, in bold, with a coloured edge.
    styles = warning.evaluate("e => { const s = getComputedStyle(e); return [s.display, s.fontWeight,"
                              " s.borderLeftWidth]; }")
    assert styles[0] == "block" and int(styles[1]) >= 600 and styles[2] != "0px", styles


def check_licence_meanings(page: Page) -> None:
    for licence in LICENCES:
        radio = page.get_by_role("radio", name=licence, exact=True)
        expect(radio).to_be_visible()
        meaning = page.locator(f"#{radio.get_attribute('aria-describedby')}")
        expect(meaning).to_be_visible()
        assert len(meaning.inner_text().split(". ")) <= 3, meaning.inner_text()  # one plain line
    expect(page.get_by_role("radio", name="CC-BY-SA-4.0", exact=True)).to_have_accessible_description(
        "As CC-BY, and what they make from your posts must be shared under this same licence. The licence in full")


def test_the_consent_text_has_its_structure_and_the_yes_choices_appear_with_yes(page: Page, servers):
    here, _ = servers
    new_person(page, here)
    page.goto(f"{here.base}/settings/consent")
    check_text_structure(page)

    licence_choices = page.get_by_role("group", name="If yes: under which licence?")
    post_choices = page.get_by_role("group", name="If yes: which posts?")
    expect(page.get_by_label("No", exact=True)).to_be_checked()
    expect(licence_choices).to_be_hidden()
    expect(post_choices).to_be_hidden()

    page.get_by_label("Yes, my posts may be used to train AI models").check()
    expect(licence_choices).to_be_visible()
    expect(post_choices).to_be_visible()
    check_licence_meanings(page)
    page.get_by_label("No", exact=True).check()
    expect(licence_choices).to_be_hidden()

    page.get_by_label("Yes, my posts may be used to train AI models").check()
    page.get_by_role("radio", name="CC-BY-SA-4.0", exact=True).check()
    page.get_by_role("button", name="Save my choice").click()
    expect(page.locator("#consent-status")).to_contain_text("you allowed it under CC-BY-SA-4.0")
    # Yes is now the saved answer: its choices show from the start.
    expect(licence_choices).to_be_visible()
    expect(page.get_by_role("radio", name="CC-BY-SA-4.0", exact=True)).to_be_checked()


def test_without_javascript_every_choice_is_shown_and_saving_works(browser: Browser, servers):
    here, _ = servers
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        new_person(page, here)
        page.goto(f"{here.base}/settings/consent")
        check_text_structure(page)
        expect(page.get_by_label("No", exact=True)).to_be_checked()
        expect(page.get_by_role("group", name="If yes: under which licence?")).to_be_visible()
        expect(page.get_by_role("group", name="If yes: which posts?")).to_be_visible()
        check_licence_meanings(page)

        page.get_by_label("Yes, my posts may be used to train AI models").check()
        page.get_by_role("radio", name="CC0-1.0", exact=True).check()
        page.get_by_label("Also my earlier public posts").check()
        page.get_by_role("button", name="Save my choice").click()
        expect(page.locator("#consent-status")).to_contain_text("you allowed it under CC0-1.0, including your earlier")
    finally:
        context.close()
