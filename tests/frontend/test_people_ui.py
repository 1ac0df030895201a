"""People in the browser (issue 12): a join request cancelled and asked again, admins added and
removed on the Admin page (refusals said as sentences), a CID searched to its transaction.

Every wallet holds no ether and has its own browser context: its actions are EIP-712 signed
and relayed by the node. Nothing here mines epochs.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
from eth_account import Account

from node.chain.actions import Action, default_deadline, sign_action
from node.storage.cids import compute_cid_bytes, format_cid_bytes
from tests.frontend.test_browser import open_with_wallet, sign_in_on_admin_page, submit
from tests.support.node import InProcessNode, wait_indexed

NARROW: Final = {"width": 375, "height": 800}


def overflow(page: Any) -> int:
    """Return how much wider than the viewport the page is (0 or less: no sideways scroll)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def relay_join_request(node: InProcessNode, person: Any, subsystem: str, text: str) -> None:
    """Ask to join ``subsystem`` as ``person`` (a local key) through ``POST /actions``."""
    registry = node.node.registry
    action = Action(action="requestJoin", signer=person.address,
                    nonce=registry.nonce_of(person.address), deadline=default_deadline(),
                    subsystem=subsystem, data=text)  # fmt: skip
    signature = sign_action(action, node.node.chain.chain_id, str(registry.address), person)
    answer = httpx.post(f"{node.url}/api/v1/actions",
                        json={**action.as_dict(), "signature": signature}, timeout=60)  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_newcomer_asks_cancels_and_asks_again(node: InProcessNode, context: Any) -> None:
    registry = node.node.registry
    wait_indexed(node)
    page, newcomer = open_with_wallet(context, node)
    sign_in_on_admin_page(page, node, newcomer)
    page.goto(f"{node.url}/#/subsystem/main")
    state = page.get_by_test_id("join-state")
    page.get_by_text("You have no request to join main").wait_for()
    page.get_by_label("Message to the admins (optional)").fill("first try")
    page.get_by_role("button", name="Ask to join").click()
    page.get_by_text("Your request to join main is pending").wait_for()
    assert "first try" in state.inner_text()
    assert registry.join_request("main", newcomer.address) == (True, "first try")
    assert page.get_by_role("button", name="Ask to join").is_hidden()

    page.get_by_role("button", name="Cancel my request").click()
    page.get_by_text("Request cancelled. You have no request to join main").wait_for()
    assert registry.join_request("main", newcomer.address)[0] is False
    assert page.get_by_role("button", name="Cancel my request").is_hidden()

    page.get_by_label("Message to the admins (optional)").fill("second try")
    page.get_by_role("button", name="Ask to join").click()
    page.get_by_text("Your request to join main is pending").wait_for()
    assert registry.join_request("main", newcomer.address) == (True, "second try")
    page.reload()  # the state comes from the chain, not from the page
    page.get_by_text("Your request to join main is pending").wait_for()
    assert page.get_by_role("button", name="Cancel my request").is_visible()
    assert newcomer.calls.count("eth_signTypedData_v4") >= 3
    assert node.node.chain.w3.eth.get_balance(newcomer.address) == 0


def test_an_admin_adds_an_admin_who_approves_a_join_then_removes_them(
    node: InProcessNode, browser: Any
) -> None:
    registry = node.node.registry
    wait_indexed(node)
    applicant = Account.create()
    relay_join_request(node, applicant, "main", "the new admin lets me in")
    first_ctx = browser.new_context(viewport=NARROW)
    second_ctx = browser.new_context()
    try:
        page, first = open_with_wallet(first_ctx, node)
        registry.add_subsystem_admin("main", first.address)  # no ether given
        sign_in_on_admin_page(page, node, first)
        page.goto(f"{node.url}/#/admin/main")
        admins = page.get_by_test_id("admins:main")
        admins.wait_for()
        assert first.address in admins.inner_text()
        second_page, second = open_with_wallet(second_ctx, node)  # an outside wallet
        page.get_by_label("New admin of main").fill(second.address)
        page.get_by_role("button", name="Add admin", exact=True).click()
        page.get_by_text(f"Added {second.address} as admin of main in block").wait_for()
        assert registry.is_subsystem_admin("main", second.address)
        assert second.address in page.get_by_test_id("admins:main").inner_text()
        assert overflow(page) <= 0

        sign_in_on_admin_page(second_page, node, second)  # the new admin, in its own browser
        requests = second_page.get_by_test_id("join-requests")
        assert "the new admin lets me in" in requests.inner_text()
        second_page.get_by_role("button", name=f"Approve {applicant.address}").click()
        second_page.get_by_text(f"Approved {applicant.address} for main in block").wait_for()
        assert registry.is_participant("main", applicant.address)

        remove = page.get_by_role("button", name=f"Remove {second.address} as admin of main")
        remove.click()
        page.get_by_role("button", name=f"Keep {second.address} as admin of main").click()
        assert registry.is_subsystem_admin("main", second.address)  # asked first: no
        remove.click()
        page.get_by_role(
            "button", name=f"Confirm removing {second.address} as admin of main"
        ).click()
        page.get_by_text(f"Removed {second.address} as admin of main in block").wait_for()
        assert not registry.is_subsystem_admin("main", second.address)
        assert second.address not in page.get_by_test_id("admins:main").inner_text()
        assert overflow(page) <= 0
        w3 = node.node.chain.w3
        assert w3.eth.get_balance(first.address) == w3.eth.get_balance(second.address) == 0
    finally:
        first_ctx.close()
        second_ctx.close()


def test_refused_admin_changes_are_said_in_a_sentence(node: InProcessNode, browser: Any) -> None:
    registry = node.node.registry
    ctx = browser.new_context(viewport=NARROW)
    try:
        page, wallet = open_with_wallet(ctx, node)
        registry.create_subsystem("solo")  # the node's wallet is its first admin
        registry.add_subsystem_admin("solo", wallet.address)
        registry.add_subsystem_admin("main", wallet.address)
        sign_in_on_admin_page(page, node, wallet)

        page.goto(f"{node.url}/#/admin/main")
        page.get_by_label("New admin of main").wait_for()
        registry.remove_subsystem_admin("main", wallet.address)  # meanwhile, by another admin
        page.get_by_label("New admin of main").fill(Account.create().address)
        page.get_by_role("button", name="Add admin", exact=True).click()
        alert = page.locator("section.admins").get_by_role("alert")
        alert.wait_for()
        text = alert.inner_text()
        assert 'Only an admin of "main" can do this' in text, text
        assert "NotSubsystemAdmin" not in text and "rejected the call" not in text
        assert overflow(page) <= 0

        registry.remove_subsystem_admin("solo", node.node.address)  # the wallet: its last admin
        page.goto(f"{node.url}/#/admin/solo")
        page.get_by_role("button", name=f"Remove {wallet.address} as admin of solo").click()
        assert "Remove yourself as admin of solo?" in page.locator("section.admins").inner_text()
        confirm = f"Confirm removing {wallet.address} as admin of solo"
        page.get_by_role("button", name=confirm).click()
        alert = page.locator("section.admins").get_by_role("alert")
        alert.wait_for()
        text = alert.inner_text()
        assert f'{wallet.address} is the last admin of "solo"' in text, text
        assert "add another admin first" in text and "LastSubsystemAdmin" not in text
        assert registry.is_subsystem_admin("solo", wallet.address)
        assert overflow(page) <= 0

        page.get_by_label("New admin of solo").fill("0x1234")
        page.get_by_role("button", name="Add admin", exact=True).click()
        page.get_by_text("Not an address: 0x1234").wait_for()
    finally:
        ctx.close()


def test_a_system_admin_adds_and_removes_a_system_admin(node: InProcessNode, context: Any) -> None:
    registry = node.node.registry
    page, wallet = open_with_wallet(context, node)
    registry.add_system_admin(wallet.address)
    other = Account.create().address
    sign_in_on_admin_page(page, node, wallet)
    section = page.locator("section.admins[data-scope=system]")
    assert node.node.address in section.get_by_test_id("admins:system").inner_text()
    page.get_by_label("New system admin").fill(other)
    page.get_by_role("button", name="Add system admin").click()
    page.get_by_text(f"Added {other} as system admin in block").wait_for()
    assert registry.is_system_admin(other)
    page.get_by_role("button", name=f"Remove {other} as system admin").click()
    page.get_by_role("button", name=f"Confirm removing {other} as system admin").click()
    page.get_by_text(f"Removed {other} as system admin in block").wait_for()
    assert not registry.is_system_admin(other)
    assert node.node.chain.w3.eth.get_balance(wallet.address) == 0


def test_a_cid_in_the_search_box_lands_on_its_transaction(
    node: InProcessNode, context: Any
) -> None:
    created = submit(node)
    tx = httpx.get(f"{node.url}/api/v1/transactions/{created['id']}", timeout=10).json()
    page = context.new_page()
    page.goto(node.url + "/")
    search = page.get_by_role("searchbox", name="Search")
    search.fill(tx["cid"])
    search.press("Enter")
    page.get_by_test_id("tx-id").wait_for()
    assert page.get_by_test_id("tx-id").inner_text() == created["id"]
    assert f"#/tx/{created['id']}" in page.url

    unknown = format_cid_bytes(compute_cid_bytes(b"in no transaction", codec="raw", version=1))
    search.fill(unknown)
    search.press("Enter")
    page.get_by_text("No transaction on this node carries this CID").wait_for()
    assert page.get_by_role("link", name=unknown[:10]).count() == 1  # still its IPFS link
