"""Run only by tests/browser/test_harness.py in a child pytest: a browser test that fails, one that reaches out."""

from playwright.sync_api import expect


def test_a_failing_browser_test_leaves_a_screenshot(page):
    page.goto("/login/")
    expect(page.get_by_role("heading", name="Sign in to the hub")).to_be_visible()
    raise AssertionError("failing on purpose")


def test_a_page_reaching_beyond_the_test_server_is_an_error(page):
    # TEST-NET-3 (RFC 5737): never routed; the harness must refuse the request before it leaves the machine.
    page.set_content('<img src="http://203.0.113.9/pixel.png">')
    page.wait_for_timeout(300)
