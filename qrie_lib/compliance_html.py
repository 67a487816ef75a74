"""The compliance report as one self-contained HTML file to hand to an auditor: inline CSS, no
script, no external resource (a CSP forbids every fetch), every value escaped."""

from __future__ import annotations

from html import escape

from qrie_lib.compliance import Outcome, Report, Score, Status

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.85rem}
th{background:#f6f8fa}.meta td:first-child{font-weight:600;width:12rem}
.PASS{background:#dafbe1}.FAIL{background:#ffebe9}.MANUAL{background:#eef1f4}.NOT_EVALUATED{background:#fff8c5}
.why,.ev{color:#57606a;font-size:.8rem}code{font-size:.8rem;word-break:break-all}
"""


def e(value: object) -> str:
    return escape(str(value), quote=True)


def _score(score: Score) -> str:
    percent = "n/a" if score.score is None else f"{score.score:.1f}%"
    return f"{e(percent)} ({score.passed} of {score.evaluated} evaluated automated controls passed)"


def _named(account_id: str, name: str) -> str:
    return f"{account_id} ({name})" if name else account_id


def _note(note: str | None) -> str:
    return f'<div class="why">{e(note)}</div>' if note else ""


def _cell(o: Outcome) -> str:
    label = o.status.value + (f" (audit: {o.audit_result.value})" if o.audit_result else "")
    why = "".join(f'<div class="why">{e(r.message)}</div>' for r in o.reasons)
    failing = f'<div class="why">{o.failing_count} failing</div>' if o.failing_count else ""
    return f'<td class="{e(o.status.value)}">{e(label)}{failing}{why}</td>'


def render(report: Report) -> str:
    fw = report.framework
    accounts = report.accounts
    title = f"{fw['name']} v{fw['version']}: compliance report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        '<table class="meta">',
        f"<tr><td>Framework</td><td>{e(fw['name'])} v{e(fw['version'])} ({e(fw['id'])})</td></tr>",
        f"<tr><td>Generated at</td><td>{e(report.generated_at)}</td></tr>",
        f"<tr><td>Accounts</td><td>{e(', '.join(_named(a.account_id, a.name) for a in accounts))}</td></tr>",
        f"<tr><td>Overall score</td><td>{_score(report.overall)}</td></tr>",
        "</table>",
        "<h2>Accounts</h2><table><tr><th>Account</th><th>Name</th><th>Score</th>"
        "<th>Pass</th><th>Fail</th><th>Not evaluated</th><th>Manual</th></tr>",
        *(
            f"<tr><td>{e(a.account_id)}</td><td>{e(a.name)}</td><td>{_score(a)}</td><td>{a.passed}</td>"
            f"<td>{a.failed}</td><td>{a.not_evaluated}</td><td>{a.manual}</td></tr>"
            for a in accounts
        ),
        "</table>",
        "<h2>Sections</h2><table><tr><th>Section</th>"
        + "".join(f"<th>{e(s.value)}</th>" for s in Status)
        + "</tr>",
        *(
            f"<tr><td>{e(s.id)} {e(s.title)}</td>"
            + "".join(f"<td>{s.counts[st]}</td>" for st in Status)
            + "</tr>"
            for s in report.sections
        ),
        "</table>",
        "<h2>Controls</h2><table><tr><th>Control</th><th>Level or severity</th><th>Assessment</th>"
        "<th>Policies</th>" + "".join(f"<th>{e(a.account_id)}</th>" for a in accounts) + "</tr>",
        *(
            f"<tr><td>{e(c.id)} {e(c.title)}{_note(c.note)}</td><td>{e(c.profile or c.severity)}</td>"
            f"<td>{e(c.assessment)}</td>"
            f"<td>{e(', '.join(c.policy_ids) or '—')}</td>"
            + "".join(_cell(c.accounts[a.account_id]) for a in accounts)
            + "</tr>"
            for c in report.controls
        ),
        "</table>",
        "<h2>Failing resources</h2><table><tr><th>Control</th><th>Account</th><th>Resource</th>"
        "<th>Policy</th><th>Severity</th><th>Region</th><th>First seen</th><th>Evidence</th></tr>",
        *(
            f"<tr><td>{e(c.id)}</td><td>{e(account_id)}</td><td><code>{e(f.arn)}</code></td>"
            f"<td>{e(f.policy_id)}</td><td>{f.severity}</td><td>{e(f.region)}</td><td>{e(f.first_seen)}</td>"
            f'<td class="ev">{e(f.evidence)}</td></tr>'
            for c in report.controls
            for account_id, o in c.accounts.items()
            for f in o.failing_resources
        ),
        "</table>",
        '<p class="why">Manual controls need a person\'s review; where a policy implements a manual '
        "control's mechanical audit, its result is shown beside MANUAL. "
        "Scores count automated controls only.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
