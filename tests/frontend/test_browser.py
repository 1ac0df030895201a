"""The explorer in a real headless chromium against a real node: wallet, submit, verify, IPFS."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from eth_account import Account

from node.assignment.codec import compute_assignment_from_json, encode_assignment
from node.chain.registry import Registry, compute_roles_mask
from node.frontend import publish
from node.ledger.transaction import compute_payload_hash
from tests.frontend.conftest import BUILD_DIR
from tests.frontend.wallet import TestWallet
from tests.support.node import (
    InProcessNode,
    domain_of,
    free_port,
    in_process_node,
    make_submission,
    wait_indexed,
)

ANCHOR_TIMEOUT: Final = 30.0
TX_PATH: Final = "/api/v1/transactions"
FUNDING_WEI: Final = 10**18
EPOCH_API_TIMEOUT: Final = 30.0
OLD_DATE: Final = "2000-01-01"
OLD_DATE_SECONDS: Final = 946684800
#: Roles of the extra (endpoint-less) nodes the assignment test registers: every role but
#: ``fe_subsystem``, so ``/s/<subsystem>/`` stays on this module's node whatever the epoch.
OTHER_ROLES_MASK: Final = compute_roles_mask(("fe_system", "be_system", "be_subsystem"))


def wait_anchored(url: str, tx_id: str) -> dict[str, Any]:
    """Return the transaction once anchored (polls the API)."""
    deadline = time.monotonic() + ANCHOR_TIMEOUT
    while time.monotonic() < deadline:
        tx = httpx.get(f"{url}{TX_PATH}/{tx_id}", timeout=10).json()
        if tx["status"] == "anchored":
            return dict(tx)
        time.sleep(0.2)
    raise TimeoutError(f"{tx_id} not anchored after {ANCHOR_TIMEOUT}s")


def admit(node: InProcessNode, *addresses: str, subsystem: str = "main") -> None:
    """Make ``addresses`` participants of ``subsystem`` (the node's wallet is a system admin)."""
    registry = node.node.registry
    for address in addresses:
        if not registry.is_participant(subsystem, address):
            registry.add_participant(subsystem, address)
    invalidate = getattr(node.node.ledger.participants, "invalidate", None)
    if callable(invalidate):
        invalidate()


def submit(node: InProcessNode, wait: bool = False, **fields: Any) -> dict[str, Any]:
    """Return the API answer to a transaction signed by a fresh, admitted wallet."""
    wallet = fields.pop("wallet", None) or Account.create()
    admit(node, wallet.address)
    body = make_submission(domain_of(node.url), wallet, **fields)
    response = httpx.post(f"{node.url}{TX_PATH}", params={"wait": wait}, json=body, timeout=60)
    response.raise_for_status()
    return {**response.json(), "signer": wallet.address}


def wait_for_be_subsystem_host(node: InProcessNode, subsystem: str) -> None:
    """Mine into a later epoch until this node serves ``subsystem``'s back-end: the assignment
    of epoch 0 comes from the deployment block, before any node registered, so it has no slot
    (``/api/v1/route`` still names this node then: see the report of issue 12)."""
    from node.auth.client import open_session

    probe = Account.create()
    admit(node, probe.address, subsystem=subsystem)
    auth = open_session(node.url, probe, login=False)
    url = f"{node.url}/api/v1/subsystems/{subsystem}/data/payloads"
    deadline = time.monotonic() + EPOCH_API_TIMEOUT
    while time.monotonic() < deadline:
        answer = httpx.post(url, json={"content": "probe"}, auth=auth, timeout=30)
        if answer.status_code == 201:
            return
        if answer.status_code != 503:  # 503: the host, catching up; more blocks would delay it
            node.node.chain.mine(node.node.settings.epoch_period)
        time.sleep(0.5)
    raise TimeoutError(f"no be_subsystem host for {subsystem!r}: {answer.text}")


def open_with_wallet(context: Any, node: InProcessNode, **wallet: Any) -> tuple[Any, TestWallet]:
    chain_id = node.node.chain.chain_id
    test_wallet = TestWallet(chain_id=wallet.pop("chain_id", chain_id), **wallet)
    test_wallet.install(context)
    return context.new_page(), test_wallet


def submit_through_ui(
    page: Any, node: InProcessNode, party: str, memo: str, amount: str | None = None
) -> str:
    page.goto(f"{node.url}/#/wallet")
    if amount is not None:
        page.get_by_label("Amount", exact=True).fill(amount)
    page.get_by_label("Parties (comma-separated addresses)").fill(party)
    page.get_by_label("Memo").fill(memo)
    page.get_by_role("button", name="Sign and submit").click()
    outcome = page.locator("#submit-status .msg.ok, #submit-status .msg.bad")
    outcome.wait_for()
    assert page.get_by_test_id("submitted").count() == 1, outcome.inner_text()
    return str(page.get_by_test_id("submitted").locator("a").inner_text())


def test_overview_shows_chain_and_anchors(node: InProcessNode, context: Any) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(node.url + "/")
    assert response.headers["x-collegium-frontend"] in ("build-dir",) or response.headers[
        "x-collegium-frontend"
    ].startswith("ipfs ")
    page.get_by_role("heading", name="Overview").wait_for()
    height = int(page.get_by_test_id("height").inner_text())
    assert height >= node.node.chain.w3.eth.block_number - 5
    assert page.get_by_test_id("epoch").inner_text() == str(node.node.registry.current_epoch())
    assert page.get_by_test_id("nodes").inner_text() == "1 active"
    assert errors == []


def test_submit_find_open_verify(node: InProcessNode, context: Any, screenshots: Path) -> None:
    page, wallet = open_with_wallet(context, node)
    admit(node, wallet.address)
    party = Account.create().address
    tx_id = submit_through_ui(page, node, party, "browser test")
    assert tx_id.startswith("0x") and len(tx_id) == 66
    assert "eth_signTypedData_v4" in wallet.calls
    wait_anchored(node.url, tx_id)

    page.goto(f"{node.url}/#/txs?signer={wallet.address}")
    row_link = page.locator("tbody a", has_text=tx_id[:10])
    row_link.wait_for()
    page.screenshot(path=str(screenshots / "transactions.png"), full_page=True)
    row_link.click()
    page.get_by_test_id("tx-id").wait_for()
    assert page.get_by_test_id("tx-id").inner_text() == tx_id
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("All three checks passed").wait_for()
    for check in ("signature", "merkle", "onchain"):
        assert page.locator(f"[data-check={check}]").get_attribute("data-ok") == "true"
    # issue 13: the result names the chain it checked and, on the embedded chain, what it trusts
    trust = page.get_by_test_id("verify-trust").inner_text()
    assert f"chain id {node.node.chain.chain_id} through {node.url}/rpc" in trust
    assert "the node's own embedded chain: the check trusts this node" in trust
    assert "collegium verify-tx" in trust and "--chain" in trust
    page.screenshot(path=str(screenshots / "transaction-verified.png"), full_page=True)


def test_tampered_proof_fails_verification(node: InProcessNode, context: Any) -> None:
    created = submit(node, wait=True, memo="to tamper")
    wait_anchored(node.url, created["id"])

    def tamper(route: Any) -> None:
        proof = route.fetch().json()
        proof["root"] = "0x" + "ab" * 32
        route.fulfill(json=proof)

    page = context.new_page()
    page.route("**/proof", tamper)
    page.goto(f"{node.url}/#/tx/{created['id']}")
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("Verification failed").wait_for()
    assert page.locator("[data-check=signature]").get_attribute("data-ok") == "true"
    assert page.locator("[data-check=merkle]").get_attribute("data-ok") == "false"
    assert "not the claimed root" in page.locator("[data-check=merkle]").inner_text()


def test_tampered_path_fails_on_chain_too(node: InProcessNode, context: Any) -> None:
    first = submit(node)
    created = submit(node, wait=True)
    wait_anchored(node.url, first["id"])
    wait_anchored(node.url, created["id"])

    def tamper(route: Any) -> None:
        proof = route.fetch().json()
        assert proof["path"], "a tree of at least two leaves has a non-empty path"
        proof["path"][0] = "0x" + "cd" * 32
        proof["root"] = proof["root"]
        route.fulfill(json=proof)

    page = context.new_page()
    page.route("**/proof", tamper)
    page.goto(f"{node.url}/#/tx/{created['id']}")
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("Verification failed").wait_for()
    assert page.locator("[data-check=merkle]").get_attribute("data-ok") == "false"
    assert page.locator("[data-check=onchain]").get_attribute("data-ok") == "false"


def test_csv_export_of_current_filter(node: InProcessNode, context: Any, tmp_path: Path) -> None:
    signer = Account.create()
    ids = {submit(node, wallet=signer, memo=f'line {i}, "quoted"')["id"] for i in range(3)}
    submit(node)
    page = context.new_page()
    page.goto(f"{node.url}/#/txs?signer={signer.address}")
    page.locator("tbody a", has_text=next(iter(ids))[:10]).wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("id,seq,subsystem,kind")
    assert {line.split(",")[0] for line in lines[1:]} == ids
    assert all('"line ' in line and '""quoted""' in line for line in lines[1:])
    page.get_by_label("Signed before (UTC)").fill(OLD_DATE)
    page.get_by_role("button", name="Filter").click()
    page.get_by_text("No transactions match.").wait_for()
    assert f"until={OLD_DATE_SECONDS}" in page.url and f"signer={signer.address}" in page.url


def test_search_box_finds_transaction_address_and_block(node: InProcessNode, context: Any) -> None:
    created = submit(node, wait=True)
    tx = wait_anchored(node.url, created["id"])
    page = context.new_page()
    page.goto(node.url + "/")
    search = page.get_by_role("searchbox", name="Search")
    search.fill(tx["id"])
    search.press("Enter")
    page.get_by_test_id("tx-id").wait_for()
    assert page.get_by_test_id("tx-id").inner_text() == tx["id"]
    search.fill(created["signer"])
    search.press("Enter")
    page.get_by_role("heading", name="Signed by it").wait_for()
    assert page.locator("tbody a", has_text=tx["id"][:10]).count() == 1
    search.fill(str(tx["anchor"]["block_number"]))
    search.press("Enter")
    page.get_by_role("heading", name="Anchors in this block").wait_for()
    assert tx["anchor"]["root"] in page.locator("main").inner_text()
    short = tx["id"][2:18] if not tx["id"][2:18].isdigit() else tx["id"][:18]  # not a block
    for query in (tx["id"][2:], tx["id"][:18], short):  # without its 0x; a unique prefix
        page.goto(node.url + "/#/overview")
        search.fill(query)
        search.press("Enter")
        page.get_by_test_id("tx-id").wait_for()
        assert page.get_by_test_id("tx-id").inner_text() == tx["id"], query


def test_wallet_messages_no_wallet_wrong_chain_rejected(node: InProcessNode, browser: Any) -> None:
    plain = browser.new_context()
    page = plain.new_page()
    page.goto(f"{node.url}/#/wallet")
    page.get_by_role("button", name="Connect wallet").click()
    assert "No wallet found" in page.get_by_role("alert").inner_text()
    plain.close()

    wrong = browser.new_context()
    page, _ = open_with_wallet(wrong, node, chain_id=node.node.chain.chain_id + 1)
    page.goto(f"{node.url}/#/wallet")
    page.get_by_role("button", name="Connect wallet").click()
    assert "Wrong network" in page.get_by_role("alert").inner_text()
    wrong.close()

    rejecting = browser.new_context()
    page, wallet = open_with_wallet(rejecting, node, reject=True)
    admit(node, wallet.address)
    page.goto(f"{node.url}/#/wallet")
    page.get_by_role("button", name="Sign and submit").click()
    assert "You rejected the request" in page.get_by_role("alert").inner_text()
    assert "eth_signTypedData_v4" in wallet.calls
    rejecting.close()


def test_sign_in_with_ethereum_or_clear_message(node: InProcessNode, context: Any) -> None:
    page, wallet = open_with_wallet(context, node)
    page.goto(f"{node.url}/#/wallet")
    page.get_by_role("button", name="Sign in (SIWE)").click()
    if httpx.get(f"{node.url}/api/v1/auth/nonce").status_code == 404:
        assert "Sign-in is not available on this node" in page.get_by_role("alert").inner_text()
    else:
        page.get_by_text(f"Signed in as {wallet.address}").wait_for()
        assert "personal_sign" in wallet.calls


def node_epoch(url: str, epoch: int) -> dict[str, Any] | None:
    """Return the node's view of ``epoch`` once its epoch API reaches it; None without the API."""
    deadline = time.monotonic() + EPOCH_API_TIMEOUT
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}/api/v1/epochs/current", timeout=10)
        if response.status_code == 404:
            return None
        if response.status_code == 200 and response.json()["epoch"] == epoch:
            return dict(response.json())
        time.sleep(0.3)
    raise TimeoutError(f"the node's epoch API did not reach epoch {epoch}")


def register_node(node: InProcessNode, capacity: int) -> Registry:
    """Register one more node (a fresh, funded wallet) in the registry; return its facade."""
    account = Account.create()
    node.node.chain.fund(account.address, FUNDING_WEI)
    registry = Registry(node.node.chain.w3, node.node.registry.address, account)
    registry.register_node(f"http://127.0.0.1:{free_port()}", capacity, OTHER_ROLES_MASK, "main")
    return registry


def mine_into(node: InProcessNode, epoch: int) -> None:
    """Mine until block ``epochStartBlock(epoch) + 1`` is mined; fix the epoch's seed."""
    registry, chain = node.node.registry, node.node.chain
    chain.mine(max(registry.epoch_start_block(epoch) - int(chain.w3.eth.block_number), 0) + 1)
    if registry.seed(epoch) is None:
        registry.fix_seed(epoch)
    wait_indexed(node)  # else the hosted subsystems answer 503 "catching up" for a while


def browser_assignment(context: Any, url: str, epoch: int) -> tuple[Any, dict[str, Any], str]:
    """Open the assignment view of ``epoch``; return the page, its input and its root."""
    page = context.new_page()
    page.goto(f"{url}/#/assignment?epoch={epoch}")
    root = page.get_by_test_id("assignment-root")
    root.wait_for()
    used = json.loads(page.get_by_test_id("assignment-input").text_content() or "")
    return page, used, root.inner_text()


def test_assignment_recomputed_in_browser_matches_python(
    node: InProcessNode, context: Any, screenshots: Path
) -> None:
    registry = node.node.registry
    extra = [register_node(node, capacity=4) for _ in range(2)]
    others = [str(r.account.address) for r in extra]  # type: ignore[union-attr]
    admit(node, node.node.address, *others)
    epoch = registry.current_epoch() + 1
    mine_into(node, epoch)
    served = node_epoch(node.url, epoch)
    page, used, root = browser_assignment(context, node.url, epoch)
    assert used["epoch"] == epoch
    assert {n["id"].lower() for n in used["nodes"]} >= {a.lower() for a in others}
    python = encode_assignment(compute_assignment_from_json(used))
    assert root == python["root"]
    assert page.locator("table").first.locator("tbody tr").count() == len(python["slots"])
    verdict = page.get_by_test_id("assignment-verdict").inner_text()
    if served is not None:  # the node's epoch API: the browser must agree with it
        assert served["root"] == python["root"]
        assert verdict.startswith("Matches")
    else:
        assert "no node answer to compare" in verdict
    assert "Every active node was live" in page.get_by_test_id("assignment-left-out").inner_text()
    page.screenshot(path=str(screenshots / "assignment.png"), full_page=True)

    # Liveness: the first extra node sends a heartbeat in the next epoch, the second stays
    # silent. Two epochs on, its window (two periods since it registered) has passed: the
    # browser leaves it out as every node does, and still agrees with the node.
    keeper, silent = extra
    mine_into(node, epoch + 1)
    keeper.heartbeat()
    mine_into(node, epoch + 2)
    boundary = registry.epoch_start_block(epoch + 2)
    assert not registry.is_live_at(others[1], boundary) and registry.is_live_at(others[0], boundary)
    served = node_epoch(node.url, epoch + 2)
    page, used, root = browser_assignment(context, node.url, epoch + 2)
    ids = {n["id"].lower() for n in used["nodes"]}
    assert others[0].lower() in ids and others[1].lower() not in ids
    assert root == encode_assignment(compute_assignment_from_json(used))["root"]
    left_out = page.get_by_test_id("assignment-left-out").inner_text()
    assert left_out.startswith("Left out as not live") and others[1][:8] in left_out
    if served is not None:
        assert served["left_out"] == [others[1]]
        assert served["root"] == root
        assert page.get_by_test_id("assignment-verdict").inner_text().startswith("Matches")


def test_same_files_load_from_ipfs_after_publish(
    node: InProcessNode, context: Any, screenshots: Path
) -> None:
    cid = publish(node.node.store, node.node.registry, BUILD_DIR)
    assert node.node.registry.frontend_cid() == cid
    assert cid in node.node.store.pins()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{node.url}/ipfs/{cid}/#/txs")
    page.get_by_role("heading", name="Transactions").wait_for()
    assert page.locator("tbody tr").count() >= 1
    page.goto(f"{node.url}/ipfs/{cid}/")
    page.get_by_role("heading", name="Overview").wait_for()
    page.locator("tbody td a").first.wait_for()  # recent anchors listed, batch CIDs linked
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)
    assert errors == []
    index = (BUILD_DIR / "index.html").read_bytes()
    assert httpx.get(f"{node.url}/ipfs/{cid}/index.html").content == index
    assert json.dumps(cid)  # the CID is a plain string


@pytest.mark.parametrize("width", [375])
def test_narrow_screen_has_no_horizontal_page_scroll(
    node: InProcessNode, browser: Any, width: int, screenshots: Path
) -> None:
    ctx = browser.new_context(viewport={"width": width, "height": 800})
    page = ctx.new_page()
    page.goto(f"{node.url}/#/txs")
    page.get_by_role("heading", name="Transactions").wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.screenshot(path=str(screenshots / "transactions-375px.png"), full_page=True)
    page.goto(f"{node.url}/#/subsystem/main")
    page.get_by_role("heading", name="Subsystem main").wait_for()
    overflow_subsystem = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    ctx.close()
    assert overflow <= 0 and overflow_subsystem <= 0


def sign_in_on_admin_page(page: Any, node: InProcessNode, wallet: TestWallet) -> None:
    page.goto(f"{node.url}/#/admin")
    page.get_by_role("button", name="Connect and sign in").click()
    page.get_by_test_id("session-address").wait_for()
    assert page.get_by_test_id("session-address").inner_text() == wallet.address


def test_admin_adds_and_removes_a_participant_with_the_wallet(
    node: InProcessNode, context: Any, screenshots: Path
) -> None:
    registry = node.node.registry
    page, wallet = open_with_wallet(context, node, rpc_url=node.url + "/rpc")
    node.node.chain.fund(wallet.address, FUNDING_WEI)
    registry.add_subsystem_admin("main", wallet.address)
    sign_in_on_admin_page(page, node, wallet)
    section = page.locator("section.manage[data-subsystem=main]")
    page.get_by_role("heading", name="Participants of main").wait_for()
    result = section.locator(".result")
    newcomer = Account.create().address
    page.get_by_label("New participant of main").fill(newcomer)

    wallet.chain_id += 1  # the wallet moved to another network: nothing is sent
    page.get_by_role("button", name="Add participant").click()
    result.get_by_role("alert").wait_for()
    assert "Wrong network" in result.inner_text()
    wallet.chain_id -= 1
    wallet.reject = True  # the user says no in the wallet
    page.get_by_role("button", name="Add participant").click()
    result.get_by_text("You rejected the request").wait_for()
    assert not registry.is_participant("main", newcomer)
    wallet.reject = False

    page.get_by_role("button", name="Add participant").click()  # eth_sendTransaction
    page.get_by_text(f"Added {newcomer} to main in block").wait_for()
    assert registry.is_participant("main", newcomer)
    assert "eth_sendTransaction" in wallet.calls
    assert section.locator("tbody code", has_text=newcomer).count() == 1
    page.screenshot(path=str(screenshots / "admin.png"), full_page=True)

    wallet.can_send = False  # a signing-only wallet: the node relays the signed transaction
    page.get_by_role("button", name=f"Remove {newcomer} from main").click()
    page.get_by_role("button", name=f"Keep {newcomer} in main").click()  # asked first: no
    assert registry.is_participant("main", newcomer)
    page.get_by_role("button", name=f"Remove {newcomer} from main").click()
    page.get_by_role("button", name=f"Confirm removal of {newcomer} from main").click()
    page.get_by_text(f"Removed {newcomer} from main in block").wait_for()
    assert not registry.is_participant("main", newcomer)
    assert "eth_signTransaction" in wallet.calls


def test_newcomer_asks_to_join_and_an_admin_without_ether_approves(
    node: InProcessNode, context: Any, browser: Any, screenshots: Path
) -> None:
    w3 = node.node.chain.w3
    wait_indexed(node)
    page, newcomer = open_with_wallet(context, node)
    sign_in_on_admin_page(page, node, newcomer)
    page.goto(f"{node.url}/#/subsystem/main")
    page.get_by_label("Message to the admins (optional)").fill("I run the bakery")
    page.get_by_role("button", name="Ask to join").click()
    page.get_by_text("Your request to join main is pending").wait_for()

    admin_context = browser.new_context()
    try:
        admin_page, admin = open_with_wallet(admin_context, node)
        node.node.registry.add_subsystem_admin("main", admin.address)  # no ether given
        sign_in_on_admin_page(admin_page, node, admin)
        requests = admin_page.get_by_test_id("join-requests")
        assert "I run the bakery" in requests.inner_text()
        admin_page.get_by_role("button", name=f"Approve {newcomer.address}").click()
        admin_page.get_by_text(f"Approved {newcomer.address} for main in block").wait_for()
        admin_page.screenshot(path=str(screenshots / "join-approved.png"), full_page=True)
        assert node.node.registry.is_participant("main", newcomer.address)
        assert w3.eth.get_balance(admin.address) == 0
    finally:
        admin_context.close()

    tx_id = submit_through_ui(
        page, node, Account.create().address, "first as a participant", amount="0250.50"
    )
    assert wait_anchored(node.url, tx_id)["amount"] == "250.5"  # normalised before signing
    page.goto(f"{node.url}/#/tx/{tx_id}")
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("All three checks passed").wait_for()
    assert w3.eth.get_balance(newcomer.address) == 0


def test_a_person_without_ether_creates_a_subsystem_and_adds_a_participant(
    node: InProcessNode, context: Any, tmp_path: Path
) -> None:
    registry = node.node.registry
    page, person = open_with_wallet(context, node)
    sign_in_on_admin_page(page, node, person)
    page.get_by_label("Name of the new subsystem").fill("atelier")
    page.get_by_role("button", name="Create subsystem").click()
    page.get_by_role("heading", name="Participants of atelier").wait_for()
    assert registry.is_subsystem_admin("atelier", person.address)
    member = Account.create().address
    page.get_by_label("New participant of atelier").fill(member)
    page.get_by_role("button", name="Add participant").click()
    page.get_by_text(f"Added {member} to atelier in block").wait_for()
    assert registry.is_participant("atelier", member)

    # its own UI: a build folder picked in the page, uploaded (the session signs the request),
    # then the wallet signs setSubsystemFrontend and the node relays it
    bundle = tmp_path / "atelier-ui"
    (bundle / "assets").mkdir(parents=True)
    (bundle / "index.html").write_text("<!doctype html><title>Atelier</title><h1>Atelier</h1>")
    (bundle / "assets" / "app.js").write_text("document.body.dataset.atelier = 'yes';\n")
    expected = node.node.store.add_path(bundle, cid_version=1, pin=False, only_hash=True)
    page.get_by_label("Build folder of atelier's front-end (with index.html)").set_input_files(
        bundle
    )
    page.get_by_role("button", name="Upload and publish").click()
    page.get_by_text(f"Published {expected} (2 files) as the front-end of atelier").wait_for()
    assert registry.subsystem_frontend("atelier") == expected  # the CID ipfs add -r gives
    served = page.goto(f"{node.url}/s/atelier/")
    assert served is not None
    assert served.headers["x-collegium-frontend"].startswith(f"ipfs {expected}")
    page.get_by_role("heading", name="Atelier").wait_for()
    assert "eth_sendTransaction" not in person.calls  # signed actions only, relayed
    assert node.node.chain.w3.eth.get_balance(person.address) == 0


def test_non_admin_is_refused_clearly_and_sees_the_subsystem_page(
    node: InProcessNode, context: Any, screenshots: Path
) -> None:
    page, wallet = open_with_wallet(context, node)
    admit(node, wallet.address)
    sign_in_on_admin_page(page, node, wallet)
    alert = page.get_by_role("alert")
    assert "You are not an admin of any subsystem" in alert.inner_text()
    assert "main — participant" in page.get_by_test_id("my-subsystems").inner_text()
    assert page.get_by_role("button", name="Add participant").count() == 0
    page.goto(f"{node.url}/#/admin/main")
    page.get_by_text('You are not an admin of "main"').wait_for()
    assert page.get_by_role("alert").count() == 1
    page.screenshot(path=str(screenshots / "admin-refused.png"), full_page=True)

    # /s/main/ without a bundle of its own: the system app, opened on the subsystem's page
    response = page.goto(f"{node.url}/s/main/")
    assert response.headers["x-collegium-frontend"].startswith("system fallback")
    page.get_by_role("heading", name="Subsystem main").wait_for()
    assert "has not published a front-end of its own" in page.locator("main").inner_text()
    count = len(node.node.registry.participants("main"))
    assert page.get_by_test_id("participant-count").inner_text() == str(count)
    admins = page.get_by_test_id("admins").inner_text()  # from the registry's events, on-chain
    assert node.node.address in admins and wallet.address not in admins
    page.screenshot(path=str(screenshots / "subsystem-fallback.png"), full_page=True)


def test_member_writes_a_private_transaction_and_reads_it_back(
    node: InProcessNode, context: Any, browser: Any
) -> None:
    secret = "pay 9000 EUR to the mill by Friday"
    wait_for_be_subsystem_host(node, "main")
    page, member = open_with_wallet(context, node)
    admit(node, member.address)
    page.goto(f"{node.url}/#/wallet")
    page.get_by_role("button", name="Sign in (SIWE)").click()
    page.get_by_text(f"Signed in as {member.address}").wait_for()
    page.get_by_label("Kind").fill("contract")
    page.get_by_label("Private: encrypted for the subsystem's participants").check()
    page.get_by_label(
        "Private content (amount, parties, terms…; only participants can read it)"
    ).fill(secret)
    page.get_by_role("button", name="Sign and submit").click()
    page.locator("#submit-status .msg.ok, #submit-status .msg.bad").wait_for()
    assert page.get_by_test_id("submitted").count() == 1, page.locator(
        "#submit-status"
    ).inner_text()
    tx_id = str(page.get_by_test_id("submitted").locator("a").inner_text())
    tx = wait_anchored(node.url, tx_id)
    assert tx["private"] and secret not in json.dumps(tx)
    assert secret.encode() not in httpx.get(f"{node.url}/ipfs/{tx['payload']}", timeout=10).content

    page.goto(f"{node.url}/#/tx/{tx_id}")
    opened = page.locator("#private-out > *").first
    opened.wait_for()
    assert page.get_by_test_id("private-content").count() == 1, opened.inner_text()
    assert page.get_by_test_id("private-content").inner_text() == secret
    page.get_by_text("The content matches the signed payload hash").wait_for()

    for wallet in (True, False):  # a signed-in non-member, then an anonymous visitor
        other = browser.new_context()
        try:
            if wallet:
                other_page, stranger = open_with_wallet(other, node)
                sign_in_on_admin_page(other_page, node, stranger)
            else:
                other_page = other.new_page()
            other_page.goto(f"{node.url}/#/tx/{tx_id}")
            other_page.get_by_test_id("private-note").wait_for()
            assert secret not in other_page.locator("main").inner_text()
        finally:
            other.close()


def test_private_transaction_listed_shown_and_verified(
    node: InProcessNode, context: Any, screenshots: Path
) -> None:
    signer = Account.create()
    payload_hash = compute_payload_hash(b"\x01" * 32, b'{"amount": "9000", "currency": "EUR"}')
    cipher_cid = node.node.store.add_bytes(b"ciphertext of a private contract")
    created = submit(node, wallet=signer, private=True, parties=[], amount="", currency="",
                     memo="", payload=cipher_cid, payload_hash=payload_hash,
                     kind="contract")  # fmt: skip
    wait_anchored(node.url, created["id"])
    page = context.new_page()
    page.goto(f"{node.url}/#/txs?signer={signer.address}")
    row = page.locator("tbody tr", has_text=created["id"][:10])
    row.wait_for()
    assert "private" in row.locator(".badge").inner_text()
    row.locator("a").first.click()
    page.get_by_test_id("tx-id").wait_for()
    assert "PrivateBusinessTransaction" in page.get_by_test_id("tx-type").inner_text()
    assert page.get_by_test_id("payload-hash").inner_text() == payload_hash
    assert "Amount" not in page.locator("dl").inner_text()
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("All three checks passed").wait_for()
    page.screenshot(path=str(screenshots / "transaction-private.png"), full_page=True)

    def tamper(route: Any) -> None:  # the node shows another payload hash than was signed
        tx = route.fetch().json()
        tx["payload_hash"] = "0x" + "ee" * 32
        route.fulfill(json=tx)

    page.route(f"**/api/v1/transactions/{created['id']}", tamper)
    page.reload()
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("Verification failed").wait_for()
    assert page.locator("[data-check=signature]").get_attribute("data-ok") == "false"
    merkle = page.locator("[data-check=merkle]")
    assert merkle.get_attribute("data-ok") == "false" and "payloadHash" in merkle.inner_text()


def test_overview_says_degraded_with_reasons_until_fixed(
    tmp_path: Path, context: Any, screenshots: Path
) -> None:
    """Issue 13: /health's reasons on the Overview, each code with its sentence, gone once the
    cause is. The causes here are real: another registered node attests a root of its own for
    this epoch (attestations_disagree, gone when it leaves), and ten blocks mined at once (a dev
    chore) are stamped up to ~9 s past the wall clock, beyond chain_max_lead (5 s) (clock_ahead,
    gone once the clock has caught up). Every reason is made on a real node in
    tests/api/test_health_reasons.py; the banner renders any code the same way."""
    with in_process_node(tmp_path / "node", chain_max_lead=5.0) as node:
        _overview_degraded_until_the_clock_catches_up(node, context, screenshots)


def _overview_degraded_until_the_clock_catches_up(
    node: InProcessNode, context: Any, screenshots: Path
) -> None:
    embedded = node.node.chain.embedded
    assert embedded is not None
    epoch = _wait_reasons(node, lambda codes: True)["epochs"]["epoch"]
    other = Account.create()
    node.node.chain.fund(other.address, 10**18)
    rogue = Registry(node.node.chain.w3, node.node.record.registry, other)
    rogue.register_node("http://127.0.0.1:9", 1, compute_roles_mask(("fe_system",)), "main")
    rogue.attest(epoch, rogue.seed_info(epoch).seed, b"\x01" * 32)  # type: ignore[union-attr]
    embedded.mine(10)
    _wait_reasons(node, lambda codes: {"clock_ahead", "attestations_disagree"} <= codes)
    page = context.new_page()
    page.goto(node.url + "/")
    banner = page.get_by_test_id("health-degraded")
    banner.wait_for()
    assert "ahead of this machine's clock" in banner.inner_text()
    assert page.locator("[data-reason=clock_ahead]").count() == 1
    disagree = page.locator("[data-reason=attestations_disagree]")
    said = disagree.inner_text()
    assert other.address in said and f"attested another root for epoch {epoch}" in said
    page.screenshot(path=str(screenshots / "overview-degraded.png"), full_page=True)
    rogue.leave_node()  # (waits while the newest block is stamped too far ahead)
    _wait_reasons(node, lambda codes: not codes & {"clock_ahead", "attestations_disagree"})
    page.reload()
    page.get_by_role("heading", name="Overview").wait_for()
    page.get_by_test_id("height").wait_for()
    assert page.locator("[data-reason]").count() == 0


def _wait_reasons(node: InProcessNode, ready: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Return /health once ``ready`` accepts the set of its reason codes (polled)."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = httpx.get(node.url + "/health", timeout=10).json()
        if body["epochs"].get("epoch") is not None and ready({r["code"] for r in body["reasons"]}):
            return body
        assert time.monotonic() < deadline, body["reasons"]
        time.sleep(0.5)
