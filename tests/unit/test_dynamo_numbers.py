"""Numbers read back from DynamoDB keep the type AWS gave them: a port stays ``22``, never ``22.0``,
and a rule number from a configuration is stored as a number, not the string ``"100"``."""

from __future__ import annotations

import json
from decimal import Decimal

from orchestration.provision import create_tables
from qrie_lib import lifecycle
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import from_item, to_item
from qrie_lib.stores.findings import Finding, FindingState, finding_item
from qrie_lib.views import findings_page
from tests.conftest import CUSTOMER

POLICY = "EC2NetworkAclAdminPortOpenToIpv4"
# As a policy gives it, from a configuration read back from DynamoDB (numbers as Decimal).
EVIDENCE = {
    "ExposedPorts": [{"Port": 22, "Protocol": "6"}, {"Port": 3389}],
    "Entries": [{"RuleNumber": Decimal(100), "CidrBlock": "0.0.0.0/0"}],
    "Ratio": Decimal("0.5"),
}


def test_integers_come_back_as_integers_and_fractions_exact():
    item = from_item(to_item({"Port": 22, "Ports": {22, 3389}, "Big": 10**20, "Half": Decimal("0.5")}))
    assert item == {"Port": 22, "Ports": {22, 3389}, "Big": 10**20, "Half": Decimal("0.5")}
    assert type(item["Port"]) is int
    assert {type(p) for p in item["Ports"]} == {int}
    assert type(item["Half"]) is Decimal


def test_a_finding_s_evidence_reads_back_with_integer_ports(aws):
    create_tables(aws)
    stores = Stores.of(aws)
    lifecycle.launch(stores, [POLICY])
    finding = Finding(
        arn=f"arn:aws:ec2:us-east-1:{CUSTOMER}:network-acl/acl-1",
        policy_id=POLICY,
        account_id=CUSTOMER,
        account_service=f"{CUSTOMER}_ec2",
        service="ec2",
        region="us-east-1",
        resource_type="AWS::EC2::NetworkAcl",
        state=FindingState.ACTIVE,
        severity=70,
        evidence=EVIDENCE,
        first_seen="2026-01-01T00:00:00.000Z",
        last_evaluated="2026-01-01T00:00:00.000Z",
        describe_time="2026-01-01T00:00:00.000Z",
    )
    stores.findings.client.put_item(TableName=stores.findings.table, Item=to_item(finding_item(finding)))
    rows, _ = findings_page(stores, policy_id=POLICY)
    evidence = rows[0]["evidence"]
    assert evidence["ExposedPorts"] == [{"Port": 22, "Protocol": "6"}, {"Port": 3389}]
    assert type(evidence["ExposedPorts"][0]["Port"]) is int
    assert '"Port": 22,' in json.dumps(evidence)
    assert evidence["Entries"] == [{"RuleNumber": 100, "CidrBlock": "0.0.0.0/0"}]  # not "100"
    assert type(evidence["Ratio"]) is float
    assert evidence["Ratio"] == 0.5
