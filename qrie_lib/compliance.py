"""A compliance report: every control of a framework, per account, PASS / FAIL / MANUAL /
NOT_EVALUATED (with why), the failing resources with their findings, and scores.

``build`` is pure over the framework, the accounts, the launched policies, the ACTIVE findings of
the framework's policies (rows of ``views.finding_row``) and what the latest scans evaluated
(``stores/coverage.py``). ``report`` reads those through the tables' keys and indexes, never a table
scan: for the whole organisation (the CLI's report, no response to fit) by policy; for one account,
or a page of accounts (``page``: the API and console, whose work and response are bounded by the
page), by the accounts' partitions, so that the read grows with those accounts' findings only.

An automated control PASSes in an account when each of its policies is launched, covers the
account, was evaluated there by a scan and left nothing failing or undecided; it FAILs when any
of its policies has an ACTIVE finding there. A manual control is MANUAL, with the result of the
policies implementing its mechanical audit beside it (``audit_result``). The score is passed
automated controls / evaluated (PASS or FAIL) automated controls, per account and over all of them."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from qrie_lib.errors import InvalidInput
from qrie_lib.frameworks.registry import Framework, Severity, get_framework
from qrie_lib.models import Account, AccountId, AccountStatus, Strict
from qrie_lib.stores import Stores
from qrie_lib.stores.coverage import Coverage, CoverageStore
from qrie_lib.stores.findings import FindingState
from qrie_lib.stores.policies import LaunchedPolicy, PolicyStatus
from qrie_lib.timeutil import now_iso
from qrie_lib.views import findings_rows

LISTED = 100  # failing resources listed per control and account (all are counted)
ACCOUNTS_PER_PAGE, MAX_ACCOUNTS_PER_PAGE = 10, 50
# A page's JSON stays under this (Lambda answers at most 6 MB): an account's outcomes are ~25-55 KB
# in the simulated organisation, up to ~3 MB with 100 failing resources listed for every control.
PAGE_BYTES = 4_000_000
EVIDENCE_CHARS = 300


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    MANUAL = "MANUAL"
    NOT_EVALUATED = "NOT_EVALUATED"


class Why(StrEnum):
    """Why a control was not evaluated in an account."""

    NO_POLICY = "NO_POLICY"  # no policy of the catalogue implements it
    POLICY_NOT_LAUNCHED = "POLICY_NOT_LAUNCHED"  # not launched, or suspended
    OUT_OF_SCOPE = "OUT_OF_SCOPE"  # launched, but its scope leaves the account out
    NOT_SCANNED = "NOT_SCANNED"  # no scan evaluated it in the account since it was launched
    MISSING_DATA = "MISSING_DATA"  # some resources could not be evaluated: their data was not collected


class ComplianceQuery(Strict):
    """``GET /compliance/{framework}``'s query string: one account, or a page of the ACTIVE accounts
    in account id order (``next_token``: the answer's, for the next page)."""

    account: AccountId | None = None
    limit: int = Field(ACCOUNTS_PER_PAGE, ge=1, le=MAX_ACCOUNTS_PER_PAGE)
    next_token: str | None = None


class Reason(BaseModel):
    code: Why
    policy_id: str | None = None
    message: str


class FailingResource(BaseModel):
    arn: str
    policy_id: str
    severity: int
    region: str
    first_seen: str
    evidence: str  # a summary of the finding's evidence


class Outcome(BaseModel):
    """One control in one account."""

    status: Status
    audit_result: Status | None = None  # a manual control's mechanical audit, when a policy implements it
    reasons: list[Reason] = []
    failing_count: int = 0
    failing_resources: list[FailingResource] = []  # the first LISTED, most severe first
    resources_evaluated: int = 0


class ControlRow(BaseModel):
    id: str
    title: str
    section: str
    profile: str | None  # a CIS benchmark's level
    severity: Severity | None  # a Security Hub standard's
    assessment: str
    note: str | None  # e.g. how the nearest policy differs, for a control no policy implements exactly
    policy_ids: list[str]
    status: Status  # over every account of the report
    accounts: dict[str, Outcome]


class Score(BaseModel):
    passed: int
    failed: int
    evaluated: int  # automated controls that passed or failed
    not_evaluated: int
    manual: int
    score: float | None  # percent of evaluated automated controls that passed; None if none was


class AccountScore(Score):
    account_id: str
    name: str


class SectionSummary(BaseModel):
    id: str
    title: str
    counts: dict[Status, int]


class Report(BaseModel):
    framework: dict[str, str]
    generated_at: str
    accounts: list[AccountScore]
    overall: Score
    sections: list[SectionSummary]
    controls: list[ControlRow]
    # A page of accounts (qrie_lib.compliance.page): the next page's token; scores, sections and
    # each control's status are then over this page's accounts.
    next_token: str | None = None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ---- the computation (pure) ---------------------------------------------------------------


def build(
    framework: Framework,
    accounts: Sequence[Account],
    launched: Iterable[LaunchedPolicy],
    findings: Iterable[Mapping[str, Any]],
    coverage: Mapping[str, Mapping[str, Coverage]],
    generated_at: str,
) -> Report:
    active = {p.policy_id: p for p in launched if p.status is PolicyStatus.ACTIVE}
    failing: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for f in findings:
        if f["state"] == FindingState.ACTIVE.value:
            failing[f["account_id"], f["policy_id"]].append(f)
    rows = []
    for control in framework.controls:
        policy_ids = framework.policies_by_control[control.id]
        outcomes = {}
        for account in accounts:
            audit = _audit(policy_ids, account, active, failing, coverage.get(account.account_id, {}))
            if not control.automated:
                audit = audit.model_copy(
                    update={"status": Status.MANUAL, "audit_result": audit.status if policy_ids else None}
                )
            outcomes[account.account_id] = audit
        rows.append(
            ControlRow(
                id=control.id,
                title=control.title,
                section=control.section,
                profile=control.profile,
                severity=control.severity,
                assessment=control.assessment.value,
                note=control.note,
                policy_ids=list(policy_ids),
                status=_overall([o.status for o in outcomes.values()])
                if control.automated
                else Status.MANUAL,
                accounts=outcomes,
            )
        )
    scores = [
        AccountScore(
            account_id=a.account_id,
            name=a.name,
            **_score([r.accounts[a.account_id].status for r in rows], rows),
        )
        for a in accounts
    ]
    return Report(
        framework={"id": framework.id, "name": framework.name, "version": framework.version},
        generated_at=generated_at,
        accounts=scores,
        overall=Score(**_score([r.accounts[a.account_id].status for a in accounts for r in rows], rows)),
        sections=_sections(framework, rows),
        controls=rows,
    )


def _audit(
    policy_ids: Sequence[str],
    account: Account,
    active: Mapping[str, LaunchedPolicy],
    failing: Mapping[tuple[str, str], list[Mapping[str, Any]]],
    coverage: Mapping[str, Coverage],
) -> Outcome:
    """What the control's policies say about the account."""
    if not policy_ids:
        return Outcome(
            status=Status.NOT_EVALUATED,
            reasons=[Reason(code=Why.NO_POLICY, message="no policy implements this control yet")],
        )
    found = sorted(
        (f for p in policy_ids for f in failing.get((account.account_id, p), ())),
        key=lambda f: (-f["severity"], f["arn"], f["policy_id"]),
    )
    reasons, evaluated = [], 0
    for policy_id in policy_ids:
        launched, covered = active.get(policy_id), coverage.get(policy_id)
        if launched is None:
            reasons.append(
                Reason(
                    code=Why.POLICY_NOT_LAUNCHED, policy_id=policy_id, message=f"{policy_id} is not launched"
                )
            )
        elif not launched.scope.covers_account(account):
            reasons.append(
                Reason(
                    code=Why.OUT_OF_SCOPE,
                    policy_id=policy_id,
                    message=f"{policy_id}'s scope leaves the account out",
                )
            )
        elif covered is None or covered.scanned_at < launched.updated_at:
            reasons.append(
                Reason(
                    code=Why.NOT_SCANNED,
                    policy_id=policy_id,
                    message=f"no scan evaluated {policy_id} in the account since it was launched or changed",
                )
            )
        else:
            evaluated += covered.evaluated
            if covered.not_evaluated:
                reasons.append(
                    Reason(
                        code=Why.MISSING_DATA,
                        policy_id=policy_id,
                        message=f"{policy_id} could not evaluate {covered.not_evaluated} resources: "
                        "their configuration was not collected",
                    )
                )
    status = Status.FAIL if found else (Status.NOT_EVALUATED if reasons else Status.PASS)
    return Outcome(
        status=status,
        reasons=reasons,
        failing_count=len(found),
        failing_resources=[_failing(f) for f in found[:LISTED]],
        resources_evaluated=evaluated,
    )


def _failing(f: Mapping[str, Any]) -> FailingResource:
    evidence = json.dumps(f["evidence"], sort_keys=True, default=str, separators=(", ", ": "))
    if len(evidence) > EVIDENCE_CHARS:
        evidence = evidence[: EVIDENCE_CHARS - 1] + "…"
    return FailingResource(
        arn=f["arn"],
        policy_id=f["policy_id"],
        severity=f["severity"],
        region=f["region"],
        first_seen=f["first_seen"],
        evidence=evidence,
    )


def _overall(statuses: Sequence[Status]) -> Status:
    """An automated control over several accounts: failing anywhere fails; passing needs every account."""
    if Status.FAIL in statuses:
        return Status.FAIL
    if statuses and all(s is Status.PASS for s in statuses):
        return Status.PASS
    return Status.NOT_EVALUATED


def _score(statuses: Sequence[Status], rows: Sequence[ControlRow]) -> dict[str, Any]:
    counts = Counter(statuses)
    passed, failed = counts[Status.PASS], counts[Status.FAIL]
    evaluated = passed + failed
    return {
        "passed": passed,
        "failed": failed,
        "evaluated": evaluated,
        "not_evaluated": counts[Status.NOT_EVALUATED],
        "manual": counts[Status.MANUAL],
        "score": round(100 * passed / evaluated, 1) if evaluated else None,
    }


def _sections(framework: Framework, rows: Sequence[ControlRow]) -> list[SectionSummary]:
    by_section: dict[str, Counter[Status]] = {}
    for row in rows:
        top = row.id.split(".", 1)[0]
        by_section.setdefault(top, Counter())[row.status] += 1
    return [
        SectionSummary(id=s, title=framework.sections[s], counts={st: c[st] for st in Status})
        for s, c in by_section.items()
    ]


# ---- reading what it needs ----------------------------------------------------------------


def report(stores: Stores, framework_id: str, account_id: str | None = None) -> Report:
    """The report of the accounts onboarded and ACTIVE (or the one asked for)."""
    framework = get_framework(framework_id)
    if account_id is not None:
        return _of_accounts(stores, framework, [_account(stores, account_id)])
    launched = _launched(stores, framework)
    findings = [
        row
        for p in launched
        if p.status is PolicyStatus.ACTIVE
        for row in findings_rows(stores, state=FindingState.ACTIVE, policy_id=p.policy_id)
    ]
    coverage = CoverageStore(stores.runs.client, stores.runs.table).get()
    return build(framework, stores.accounts.active(), launched, findings, coverage, now_iso())


def page(stores: Stores, framework_id: str, q: ComplianceQuery) -> Report:
    """One account's report, or a page of the ACTIVE accounts': at most ``limit`` accounts, fewer
    when their outcomes would exceed ``PAGE_BYTES`` (accounts with many failing resources)."""
    if q.account is not None:
        return report(stores, framework_id, q.account)
    framework = get_framework(framework_id)
    after = _after(q.next_token)
    accounts = sorted((a for a in stores.accounts.active() if a.account_id > after), key=_by_id)
    chosen = accounts[: q.limit]
    launched, findings, coverage = _read(stores, framework, chosen)
    while True:
        answer = build(framework, chosen, launched, findings, coverage, now_iso())
        if len(chosen) == 1 or len(answer.model_dump_json()) <= PAGE_BYTES:
            break
        chosen = chosen[: len(chosen) // 2]  # build is pure: the findings read are kept
    more = len(accounts) > len(chosen)
    return answer.model_copy(update={"next_token": chosen[-1].account_id if more else None})


def _of_accounts(stores: Stores, framework: Framework, accounts: Sequence[Account]) -> Report:
    return build(framework, accounts, *_read(stores, framework, accounts), now_iso())


def _read(
    stores: Stores, framework: Framework, accounts: Sequence[Account]
) -> tuple[list[LaunchedPolicy], list[dict[str, Any]], dict[str, dict[str, Coverage]]]:
    """What the report of a few accounts needs, their findings read from their own partitions."""
    launched = _launched(stores, framework)
    reported = {p.policy_id for p in launched if p.status is PolicyStatus.ACTIVE}
    findings = [
        row
        for account in accounts
        for row in findings_rows(stores, state=FindingState.ACTIVE, account_id=account.account_id)
        if row["policy_id"] in reported
    ]
    coverage = CoverageStore(stores.runs.client, stores.runs.table).get_many(a.account_id for a in accounts)
    return launched, findings, coverage


def _launched(stores: Stores, framework: Framework) -> list[LaunchedPolicy]:
    mapped = {p for ids in framework.policies_by_control.values() for p in ids}
    return [p for p in stores.policies.list() if p.policy_id in mapped]


def _by_id(account: Account) -> str:
    return account.account_id


def _after(token: str | None) -> str:
    """The account a page token says the previous page ended with ("" for the first page)."""
    if token is None:
        return ""
    if not (len(token) == 12 and token.isdigit()):
        raise InvalidInput("next_token: not a token this API issued for this report")
    return token


def _account(stores: Stores, account_id: str) -> Account:
    account = stores.accounts.get(account_id)
    if account is None or account.status is not AccountStatus.ACTIVE:
        raise InvalidInput(f"account: {account_id} is not an onboarded ACTIVE account")
    return account


# ---- flat output --------------------------------------------------------------------------

CSV_FIELDS = (
    "control_id",
    "title",
    "section",
    "profile",
    "severity",
    "assessment",
    "account_id",
    "status",
    "audit_result",
    "reasons",
    "policy_ids",
    "note",
    "failing_count",
    "failing_resources",
)


def csv_text(report: Report) -> str:
    """One row per control and account; failing resources' ARNs separated by spaces."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in report.controls:
        for account_id, o in row.accounts.items():
            writer.writerow(
                {
                    "control_id": row.id,
                    "title": row.title,
                    "section": row.section,
                    "profile": row.profile or "",
                    "severity": row.severity.value if row.severity else "",
                    "assessment": row.assessment,
                    "account_id": account_id,
                    "status": o.status.value,
                    "audit_result": o.audit_result.value if o.audit_result else "",
                    "reasons": "; ".join(r.message for r in o.reasons),
                    "policy_ids": " ".join(row.policy_ids),
                    "note": row.note or "",
                    "failing_count": o.failing_count,
                    "failing_resources": " ".join(f.arn for f in o.failing_resources),
                }
            )
    return out.getvalue()
