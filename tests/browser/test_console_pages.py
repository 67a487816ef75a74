"""Every console page in headless Chromium against ``qrie local up``: it loads without a console
error (a CSP violation is one), filters change the rows, a policy launched in the page starts a
scan that the run page follows to its end, and each page is saved as a screenshot under docs/.
The last test measures the overview and a findings page over 10,000 findings against the API call
alone (browser Navigation Timing; printed, never asserted: no test depends on timing)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from qrie_lib.console.data import RUN_KINDS
from qrie_lib.stores import Stores
from qrie_lib.stores.counters import changes
from qrie_lib.stores.dynamo import to_item
from qrie_lib.stores.findings import Finding, FindingState, finding_item, tally
from tests.browser.conftest import QRIE, ROOT, Console, scans_finished

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("console")]
# Screenshots and timings refresh the README's under docs/ only when asked (QRIE_UPDATE_DOCS=1):
# a test run never modifies tracked files.
DOCS = ROOT / "docs" if os.environ.get("QRIE_UPDATE_DOCS") else Path(tempfile.mkdtemp(prefix="qrie-console-"))
PAGES = {
    "overview": "/console/",
    "findings": "/console/findings",
    "inventory": "/console/inventory",
    "policies": "/console/policies",
    "runs": "/console/runs",
    "compliance": "/console/compliance",
}
BENCH_FINDINGS = 10_000
WAIT_S = 120  # a bound for a stuck page, not a wait: conditions are polled


def errors(browser: Any) -> list[dict[str, Any]]:
    """What the page logged at SEVERE (script errors, CSP violations, failed loads)."""
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def rows(browser: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")]


def wait_until(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        time.sleep(0.2)
    return value


def run_state(browser: Any) -> str:
    """The run page's status; htmx replaces the block while it runs, so an element may go stale."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return browser.find_element("id", "run-state").text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def load(browser: Any, console: Console, path: str) -> None:
    browser.get(f"{console.base}{path}")
    wait_until(lambda: browser.execute_script("return document.readyState") == "complete", path)


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_loads_without_console_errors(console, browser, name):
    errors(browser)  # drain what earlier pages logged
    load(browser, console, PAGES[name])
    assert browser.title.endswith("· Qrie"), browser.page_source[:500]
    assert browser.find_element("css selector", "h1").text
    assert errors(browser) == []
    DOCS.mkdir(exist_ok=True)
    browser.save_screenshot(str(DOCS / f"console-{name}.png"))


def test_a_finding_and_a_resource_page_load_without_console_errors(console, browser):
    load(browser, console, PAGES["findings"])
    browser.find_element("css selector", "#results tbody a").click()
    wait_until(lambda: "Evidence" in browser.page_source, "the finding page")
    browser.save_screenshot(str(DOCS / "console-finding.png"))
    browser.find_element("css selector", ".facts a").click()
    wait_until(lambda: "Configuration" in browser.page_source, "the resource page")
    browser.save_screenshot(str(DOCS / "console-resource.png"))
    assert errors(browser) == []


def test_filters_change_the_rows_in_place(console, browser):
    from selenium.webdriver.support.ui import Select

    load(browser, console, PAGES["findings"])
    everything = rows(browser)
    assert len(everything) > 1
    Select(browser.find_element("name", "severity")).select_by_value("critical")
    # htmx swaps the table and pushes the filter into the address bar
    wait_until(lambda: "severity=critical" in browser.current_url, "the critical filter")
    critical = wait_until(lambda: (r := rows(browser)) != everything and r, "the critical rows")
    assert all("critical" in row for row in critical)
    Select(browser.find_element("name", "resource_type")).select_by_value("AWS::IAM::User")
    wait_until(lambda: "resource_type=AWS%3A%3AIAM%3A%3AUser" in browser.current_url, "the type filter")
    narrowed = rows(browser)
    assert all(":user/" in row for row in narrowed) or narrowed == ["No findings match."]
    assert errors(browser) == []


def test_a_policy_launched_in_the_page_starts_a_scan(console, browser):
    status, body, _ = console.api("DELETE", "/policies/S3BucketPublic")  # AVAILABLE again is not
    assert status == 202, body  # possible, so suspend it through the API and relaunch it here
    wait_until(
        lambda: console.api("GET", "/policies/S3BucketPublic")[1]["policy"]["status"] == "SUSPENDED",
        "the suspension",
    )
    load(browser, console, f"{PAGES['policies']}#policy-S3BucketPublic")
    form = browser.find_element("css selector", "#policy-S3BucketPublic form")
    form.find_element("name", "severity").send_keys("95")
    form.find_element("css selector", "button[value=launch]").click()
    wait_until(lambda: "/console/runs/scan/" in browser.current_url, "the scan's page")
    wait_until(lambda: run_state(browser) in ("SUCCEEDED", "FAILED"), "the scan's end")
    assert run_state(browser) == "SUCCEEDED"
    browser.save_screenshot(str(DOCS / "console-run.png"))
    policy = console.api("GET", "/policies/S3BucketPublic")[1]["policy"]
    assert (policy["status"], policy["effective_severity"]) == ("ACTIVE", 95)
    name = browser.current_url.rsplit("/", 1)[-1]
    executions = console.aws.client("stepfunctions").list_executions(
        stateMachineArn=policy_scan_machine(console), maxResults=5
    )["executions"]
    started = next(e for e in executions if e["name"] == name)
    described = console.aws.client("stepfunctions").describe_execution(executionArn=started["executionArn"])
    assert json.loads(described["input"]) == {"policy_id": "S3BucketPublic"}
    assert errors(browser) == []


def test_a_suppression_made_in_the_page_shows_in_the_api(console, browser):
    load(browser, console, "/console/findings?policy=S3BucketPublic")
    browser.find_element("css selector", "#results tbody a").click()
    wait_until(lambda: "Suppress" in browser.page_source, "the finding page")
    arn = browser.find_element("name", "arn").get_attribute("value")
    browser.find_element("name", "reason").send_keys("public by design")
    browser.find_element("css selector", "form.suppress button").click()
    wait_until(lambda: "/console/runs/scan/" in browser.current_url, "the rematch scan's page")
    status, body, _ = console.api("GET", "/suppressions")
    assert status == 200
    assert [(r["arn_glob"], r["reason"]) for r in body["suppressions"]] == [(arn, "public by design")]
    assert errors(browser) == []


def band_values(browser: Any) -> list[int]:
    from selenium.webdriver.common.by import By

    cells = browser.find_elements(By.CSS_SELECTOR, "#results tbody .band")
    return [int(c.text.rsplit("(", 1)[1].rstrip(")")) for c in cells]


def test_critical_findings_come_first_across_pages_with_counts(console, browser):
    """Items 10 and 14: the default view is most severe first across pages ("Next page" goes on
    in that order), says which rows of how many it shows, and links exports of its filter."""
    scans_finished(console.aws)  # the suppression's rematch scan moves a finding meanwhile
    total = console.api("GET", "/summary")[1]["findings"]["ACTIVE"]["total"]
    load(browser, console, "/console/findings?limit=5")
    first = band_values(browser)
    assert first == sorted(first, reverse=True)
    assert first[0] == max(r["severity"] for r in console.api("GET", "/findings?limit=500")[1]["findings"])
    counts = browser.find_element("css selector", "#results .counts").text
    assert f"1–5 of {total}." in counts
    assert "Most severe first across pages" in counts
    browser.find_element("css selector", "a[rel=next]").click()
    wait_until(lambda: "start=5" in browser.current_url, "the second page")
    second = band_values(browser)
    assert second
    assert max(second) <= min(first)
    assert f"6–{5 + len(second)} of {total}." in browser.find_element("css selector", "#results .counts").text
    export = browser.find_element("link text", "CSV").get_attribute("href")
    status, _, _ = console.api("GET", export.removeprefix(console.base).replace("format=csv", "format=ocsf"))
    assert status == 200
    assert errors(browser) == []


def test_a_text_search_finds_what_is_further_on_and_says_none_only_when_it_read_everything(console, browser):
    """Item 11: a search whose matches are on later pages finds them on the first screen."""
    every = console.api("GET", "/findings?limit=500")[1]["findings"]
    last = every[-1]["arn"]  # the last in the default order
    load(browser, console, "/console/findings?" + urlencode({"q": last, "limit": "5"}))
    assert any(last in row for row in rows(browser))
    assert "No findings match" not in browser.page_source
    load(browser, console, "/console/findings?q=nothing-is-called-this")
    assert rows(browser) == ["No findings match."]
    assert "searched" in browser.find_element("css selector", "#results .counts").text
    assert errors(browser) == []


def test_suspending_a_policy_in_the_page_asks_first(console, browser):
    """Item 13: the Suspend button shows what it resolves and a confirm button (no script dialog:
    the CSP allows none); Cancel changes nothing; confirming starts the scan."""
    load(browser, console, f"{PAGES['policies']}#policy-S3BucketPublic")
    browser.find_element("css selector", "#policy-S3BucketPublic button[value=suspend]").click()
    wait_until(lambda: "Suspend S3BucketPublic?" in browser.title, "the confirm page")
    assert "resolves all its findings" in browser.page_source
    browser.find_element("link text", "Cancel").click()
    wait_until(lambda: browser.title.startswith("Policies"), "back to the policies")
    assert console.api("GET", "/policies/S3BucketPublic")[1]["policy"]["status"] == "ACTIVE"
    browser.find_element("css selector", "#policy-S3BucketPublic button[value=suspend]").click()
    wait_until(lambda: "Suspend S3BucketPublic?" in browser.title, "the confirm page")
    browser.find_element("css selector", "form.confirm button").click()
    wait_until(lambda: "/console/runs/scan/" in browser.current_url, "the scan's page")
    wait_until(lambda: run_state(browser) in ("SUCCEEDED", "FAILED"), "the scan's end")
    assert console.api("GET", "/policies/S3BucketPublic")[1]["policy"]["status"] == "SUSPENDED"
    assert errors(browser) == []
    status, body, _ = console.api("POST", "/policies/launch", {"policy_id": "S3BucketPublic"})
    assert status == 201, body


def test_unknown_pages_a_used_link_and_a_fresh_link(console, browser):
    """Item 13: unknown console paths and / get the styled page; the used sign-in link says how to
    get a new one; ``qrie console --link`` prints one that signs in."""
    for path in ("/console/nowhere", "/"):
        load(browser, console, path)
        assert browser.find_element("css selector", "p.error").text.startswith("NotFound")
        assert browser.find_element("css selector", "h1").text == "Not Found"
    browser.delete_all_cookies()
    browser.get(console.sign_in)  # used when the browser fixture signed in
    assert f"qrie console --link --port {urlsplit(console.base).port}" in browser.page_source
    fresh = subprocess.run(
        [QRIE, "console", "--link", "--port", str(urlsplit(console.base).port)],
        check=True, capture_output=True, text=True, env=console.env, timeout=60,
    ).stdout.strip()  # fmt: skip
    browser.get(fresh)
    wait_until(lambda: browser.current_url.endswith("/console/"), "the overview, signed in")
    assert browser.find_element("css selector", "h1").text == "Overview"
    # The 404 and 401 answers above are logged as failed loads; nothing else may be.
    assert [e for e in errors(browser) if e["source"] != "network"] == []


def policy_scan_machine(console: Console) -> str:
    machines = console.aws.client("stepfunctions").list_state_machines()["stateMachines"]
    assert "scan" in RUN_KINDS
    return next(m["stateMachineArn"] for m in machines if m["name"] == "qrie-scan")


def seed_findings(console: Console, policy_id: str, count: int) -> None:
    """``count`` ACTIVE findings of a launched policy written as the scan writes them (the item
    and its counters), in batches: the measurement needs the volume, not the pipeline."""
    stores = Stores.of(console.aws)
    ddb, table = console.aws.client("dynamodb"), console.aws.settings.findings_table
    now = "2026-01-01T00:00:00+00:00"
    account = stores.accounts.list()[0].account_id
    cells: dict[str, Counter[str]] = {}
    batch: list[dict[str, Any]] = []
    for n in range(count):
        finding = Finding(
            arn=f"arn:aws:s3:::bench-bucket-{n:05d}",
            policy_id=policy_id,
            account_service=f"{account}_s3",
            account_id=account,
            service="s3",
            region="us-east-1",
            resource_type="AWS::S3::Bucket",
            state=FindingState.ACTIVE,
            severity=95,
            evidence={"bench": n},
            first_seen=now,
            last_evaluated=now,
            describe_time=now,
        )
        batch.append({"PutRequest": {"Item": to_item(finding_item(finding))}})
        for row, delta in changes(None, tally(finding)).items():
            cells.setdefault(row, Counter()).update(delta)
        if len(batch) == 25 or n == count - 1:
            pending = {table: batch}
            while pending:
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            batch = []
    for row, delta in cells.items():
        stores.counters.adds.add({"Counter": row}, delta)


def first_render_ms(browser: Any, console: Console, path: str) -> dict[str, float]:
    load(browser, console, path)
    timing = browser.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "const p = performance.getEntriesByName('first-contentful-paint')[0];"
        "return {response: n.responseEnd, dom: n.domContentLoadedEventEnd, paint: p ? p.startTime : null};"
    )
    return {k: round(v, 1) for k, v in timing.items() if v is not None}


def test_first_render_of_the_overview_and_of_10000_findings_against_the_api(console, browser, capsys):
    seed_findings(console, "S3BucketPublic", BENCH_FINDINGS)
    status, summary, _ = console.api("GET", "/summary")
    assert status == 200
    assert summary["findings"]["ACTIVE"]["critical"] >= BENCH_FINDINGS
    figures = {}
    for label, page, calls in (
        ("overview", "/console/", ("/summary", "/trends?days=30")),  # what the overview shows
        (
            "findings",
            "/console/findings?policy=S3BucketPublic&limit=50",
            ("/findings?policy=S3BucketPublic&limit=50",),
        ),
    ):
        first_render_ms(browser, console, page)  # warm: the first request of a kind loads its code
        api_ms = {path: round(console.api("GET", path)[2] * 1000, 1) for path in calls}
        figures[label] = {"page": first_render_ms(browser, console, page), "api_ms": api_ms}
    assert len(rows(browser)) == 50  # the findings page shows a full page of the 10,000
    (DOCS / "console-timing.json").write_text(json.dumps(figures, indent=2) + "\n")
    with capsys.disabled():
        print(f"\nconsole first render, {BENCH_FINDINGS} findings: {json.dumps(figures)}")
