"""Inventory at real latency: customer emulators (moto servers, each in its own process, holding
fixture-sized customer accounts, one process per account up to 8) behind a proxy that adds a
fixed delay to every customer call, and Qrie's embedded runtime with ``customers`` pointing at
the proxy.

One run inventories the accounts twice on fresh operator state: at +0 ms (the reference) and at
``--delay-ms``, scans both with the whole catalogue and checks the findings are the same. Prints
the wall of each inventory, customer calls (and per resource), the most and the mean calls in
flight (all accounts, and the most of one account), and the wall the same calls would take one
after another.

    python -m bench.latency [--delay-ms 100] [--accounts 5] [--emulators N] [--json]

``--json`` prints one object: the delayed run's figures (``inventory_wall_s``, ``customer_calls``,
``max_in_flight``, ``serial_wall_s``, ...), the reference's under ``reference``, and
``findings_match_reference``. Exits 1 if the findings differ or the inventory failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from orchestration.credentials import FAKE_CREDENTIALS
from orchestration.simulated_org import ALL_PAB, EVERYONE, WORLD, document, trust_policy
from qrie_lib.external_ids import new_external_id
from qrie_lib.settings import Settings

OPERATOR = "123456789012"  # the embedded operator account (moto's default)
REGION = "us-east-1"
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})
START_TIMEOUT_S = 120  # a bound for a stuck emulator start, not a wait: readiness is polled


def account_id(n: int) -> str:
    return f"{300_000_000_000 + n:012d}"


# ---- the latency proxy -----------------------------------------------------------------------


@dataclass
class Call:
    key: str  # the access key that signed it: one per account (its role's credentials)
    start: float
    end: float


@dataclass
class CallLog:
    """Every call that went through the proxy, and the most in flight at once (all, per key)."""

    calls: list[Call] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: int = 0
    max_per_key: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, key: str) -> float:
        with self._lock:
            self.in_flight[key] += 1
            self.max_in_flight = max(self.max_in_flight, sum(self.in_flight.values()))
            self.max_per_key[key] = max(self.max_per_key[key], self.in_flight[key])
        return time.perf_counter()

    def end(self, key: str, start: float) -> None:
        with self._lock:
            self.in_flight[key] -= 1
            self.calls.append(Call(key, start, time.perf_counter()))

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.max_in_flight = 0
            self.max_per_key.clear()


def signing_key(headers: Any) -> str:
    """The access key id of a SigV4 ``Authorization`` header ("" when unsigned)."""
    credential = headers.get("Authorization", "").partition("Credential=")[2]
    return credential.partition("/")[0]


class LatencyProxy:
    """Forwards every request to one of the ``upstreams`` after ``delay_s``, logging it (``log``).

    With several upstreams (emulator processes), an account's calls all go to one: an AssumeRole
    goes to the role's account's emulator, and the calls signed with the keys it returned follow.
    One moto process answers one call at a time (its GIL), and AWS answers in parallel."""

    def __init__(self, upstreams: list[str], port: int, delay_s: float = 0.0) -> None:
        self.upstreams = [u.removeprefix("http://") for u in upstreams]
        self.delay_s = delay_s
        self.log = CallLog()
        self.url = f"http://127.0.0.1:{port}"
        self._key_upstream: dict[str, str] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True

    def route(self, key: str, body: bytes) -> str:
        if key in self._key_upstream:
            return self._key_upstream[key]
        role = re.search(rb"RoleArn=arn%3Aaws%3Aiam%3A%3A(\d{12})", body)
        return self.upstreams[int(role.group(1)) % len(self.upstreams) if role else 0]

    def learn(self, upstream: str, payload: bytes) -> None:
        """The keys an AssumeRole answered are its account's: their calls go to the same upstream."""
        for key in re.findall(rb"<AccessKeyId>([^<]+)</AccessKeyId>", payload):
            self._key_upstream[key.decode()] = upstream

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections

            def log_message(self, *_: Any) -> None:  # not a line per request
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = signing_key(self.headers)
                target = proxy.route(key, body)
                start = proxy.log.begin(key)
                try:
                    time.sleep(proxy.delay_s)
                    upstream = http.client.HTTPConnection(target, timeout=60)
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    headers["Host"] = self.headers.get("Host", target)
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                    upstream.close()
                finally:
                    proxy.log.end(key, start)
                if b"AssumeRoleResponse" in payload:
                    proxy.learn(target, payload)
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        return Handler

    def __enter__(self) -> LatencyProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def customer_emulators(ports: list[int]) -> Iterator[list[str]]:
    """moto servers, each in its own process (their CPU apart from the runtime's), standing in
    for AWS, with the runtime's emulation of what moto lacks (AssumeRole's ExternalId, ...)."""
    serve = "import sys; from orchestration import emulation; emulation.install(sys.argv[1]);"
    serve += " from moto.server import main; main(sys.argv[2:])"
    env = {**os.environ, **FAKE_CREDENTIALS, "MOTO_AMIS_PATH": str(amis_path())}
    with ExitStack() as stack:
        for port in ports:
            command = [sys.executable, "-c", serve, Settings().role_name, "-H", "127.0.0.1", "-p", str(port)]
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            stack.callback(stopped, proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(reachable(port) for port in ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the customer emulators on ports {ports} did not start")
            time.sleep(0.1)
        yield [f"http://127.0.0.1:{port}" for port in ports]


def stopped(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def amis_path() -> Path:
    return Path(__file__).parents[1] / "orchestration" / "data" / "amis.json"


def reachable(port: int) -> bool:
    try:
        http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/moto-api/")
    except OSError:
        return False
    return True


# ---- the fixture: what each customer account holds -------------------------------------------


def seed_accounts(url: str, accounts: int) -> dict[str, str]:
    """Seed ``accounts`` fixture accounts at ``url``; their ExternalIds by account id."""
    from qrie_lib.aws import Aws

    emulator = Aws(Settings(endpoint_url=url, region=REGION))
    external_ids = {}
    for n in range(1, accounts + 1):
        acct = account_id(n)
        session = emulator.in_account(acct, "seed")  # an administrator's access (moto's AssumeRole)
        external_ids[acct] = new_external_id()
        session.client("iam").create_role(
            RoleName=Settings().role_name, AssumeRolePolicyDocument=trust_policy(OPERATOR, external_ids[acct])
        )
        seed_fixture({s: session.client(s) for s in ("iam", "s3", "ec2", "kms")}, n)
    return external_ids


def seed_fixture(clients: dict[str, Any], n: int) -> None:
    """Ten buckets in as many states, a few IAM identities, a key and open security groups."""
    s3, iam, ec2, kms = clients["s3"], clients["iam"], clients["ec2"], clients["kms"]
    for i in range(10):
        bucket = f"lat{n:02d}-bucket-{i}"
        s3.create_bucket(Bucket=bucket)
        if i % 3 == 0:
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_PAB)
        if i % 3 == 1:
            owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
            s3.put_bucket_acl(Bucket=bucket, GrantFullControl=f'id="{owner}"', GrantRead=EVERYONE)
        if i % 2 == 0:
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if i % 4 == 0:
            deny_http = {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
            s3.put_bucket_policy(Bucket=bucket, Policy=document(deny_http))
        if i % 5 == 0:
            s3.put_bucket_ownership_controls(
                Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
            )
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
    for user in ("alice", "bob"):
        iam.create_user(UserName=user)
        iam.create_access_key(UserName=user)
    iam.create_login_profile(UserName="alice", Password="Lat-Passw0rd!x")
    iam.create_group(GroupName="admins")
    iam.put_group_policy(
        GroupName="admins",
        PolicyName="admin",
        PolicyDocument=document({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    )
    iam.add_user_to_group(GroupName="admins", UserName="bob")
    kms.create_key(Description="data")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="ssh-open", Description="ssh", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": WORLD}]}],
    )


# ---- one measured inventory -------------------------------------------------------------------


@dataclass
class Measured:
    delay_ms: float
    inventory_wall_s: float
    status: str
    resources: int
    customer_calls: int
    max_in_flight: int
    max_in_flight_per_account: int
    mean_in_flight: float
    serial_wall_s: float
    findings: dict[str, str]  # "policy arn" -> state

    def figures(self) -> dict[str, Any]:
        return {
            "delay_ms": self.delay_ms,
            "inventory_status": self.status,
            "inventory_wall_s": round(self.inventory_wall_s, 2),
            "resources": self.resources,
            "customer_calls": self.customer_calls,
            "calls_per_resource": round(self.customer_calls / max(self.resources, 1), 2),
            "max_in_flight": self.max_in_flight,
            "max_in_flight_per_account": self.max_in_flight_per_account,
            "mean_in_flight": round(self.mean_in_flight, 2),
            "serial_wall_s": round(self.serial_wall_s, 2),
        }


@contextmanager
def customer_side(
    port: int, accounts: int, emulators: int = 0
) -> Iterator[tuple[LatencyProxy, dict[str, str]]]:
    """The proxy on ``port`` in front of emulator processes on the next ports (``emulators``, by
    default one per account and at most 8), ``accounts`` fixture accounts seeded through it (so it
    learns each account's route); the proxy and the accounts' ExternalIds."""
    os.environ.update(FAKE_CREDENTIALS)  # the customer side's own (the emulators take any)
    ports = [port + 1 + i for i in range(emulators or min(accounts, 8))]
    with customer_emulators(ports) as upstreams, LatencyProxy(upstreams, port) as proxy:
        yield proxy, seed_accounts(proxy.url, accounts)


@contextmanager
def onboarded_runtime(
    proxy: LatencyProxy, external_ids: dict[str, str], latency: Any = None
) -> Iterator[Any]:
    """A fresh local runtime whose customer side is the proxy, with the fixture accounts onboarded."""
    from orchestration.runtime import LocalRuntime
    from qrie_lib.models import Account
    from qrie_lib.stores import Stores

    settings = Settings(customers=proxy.url, regions=(REGION,))
    with LocalRuntime(settings, latency=latency) as runtime:
        accounts = Stores.of(runtime.aws).accounts
        for acct, external_id in external_ids.items():
            accounts.put(Account(account_id=acct, name=acct, regions=[REGION], external_id=external_id))
        yield runtime


def measure(proxy: LatencyProxy, external_ids: dict[str, str], delay_ms: float) -> Measured:
    """Inventory every account through the proxy on fresh operator state, then scan."""
    from qrie_lib import executions, lifecycle
    from qrie_lib.policies.registry import CATALOGUE
    from qrie_lib.stores import Stores

    with onboarded_runtime(proxy, external_ids) as runtime:
        aws = runtime.aws
        stores = Stores.of(aws)
        proxy.delay_s = delay_ms / 1000
        proxy.log.clear()
        start = time.perf_counter()
        arn = executions.start(aws, "inventory", {"service": "all"})
        outcome = executions.follow(aws, "inventory", arn, poll_s=0.05)
        wall = time.perf_counter() - start
        proxy.delay_s = 0.0
        calls = list(proxy.log.calls)
        max_in_flight, per_key = proxy.log.max_in_flight, dict(proxy.log.max_per_key)
        summary = executions.run_summary(aws, "inventory", arn) or {}

        lifecycle.launch(stores, sorted(CATALOGUE))
        scan = executions.follow(aws, "scan", executions.start(aws, "scan", {}), poll_s=0.05)
        if scan.status != "SUCCEEDED":
            raise RuntimeError(f"scan {scan.status}: {scan.cause}")
        findings = {
            f"{item['PolicyId']['S']} {item['ARN']['S']}": item["State"]["S"]
            for page in aws.client("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=aws.settings.findings_table)
            for item in page["Items"]
        }
    busy = sum(c.end - c.start for c in calls)
    return Measured(
        delay_ms=delay_ms,
        inventory_wall_s=wall,
        status=outcome.status,
        resources=sum(summary.get("resources_by_type", {}).values()),
        customer_calls=len(calls),
        max_in_flight=max_in_flight,
        # The AssumeRole calls are signed with the customer side's own key, not an account's.
        max_in_flight_per_account=max(
            (n for key, n in per_key.items() if key != FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]), default=0
        ),
        mean_in_flight=busy / wall if wall else 0.0,
        serial_wall_s=busy,
        findings=findings,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=100.0, help="added to every customer call")
    parser.add_argument("--accounts", type=int, default=5, help="fixture-sized customer accounts")
    parser.add_argument("--port", type=int, default=4630, help="the proxy's; the emulators take the next")
    parser.add_argument(
        "--emulators", type=int, default=0, help="emulator processes (default one per account, at most 8)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    if args.delay_ms < 0 or args.accounts < 1 or args.emulators < 0:
        parser.error("--delay-ms and --emulators must be >= 0, --accounts >= 1")
    print(f"seeding {args.accounts} accounts ...", file=sys.stderr, flush=True)
    with customer_side(args.port, args.accounts, args.emulators) as (proxy, external_ids):
        print("inventory at +0 ms (the reference) ...", file=sys.stderr, flush=True)
        reference = measure(proxy, external_ids, 0.0)
        print(f"inventory at +{args.delay_ms:g} ms ...", file=sys.stderr, flush=True)
        delayed = measure(proxy, external_ids, args.delay_ms)

    same = reference.findings == delayed.findings
    result = {
        **delayed.figures(),
        "accounts": args.accounts,
        "reference": reference.figures(),
        "findings": len(delayed.findings),
        "findings_match_reference": same,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for label, m in (("+0 ms (reference)", reference), (f"+{args.delay_ms:g} ms", delayed)):
            f = m.figures()
            print(
                f"{label}: inventory {f['inventory_status']} in {f['inventory_wall_s']} s,"
                f" {f['customer_calls']} customer calls ({f['calls_per_resource']} per resource,"
                f" {f['resources']} resources), in flight max {f['max_in_flight']}"
                f" (one account {f['max_in_flight_per_account']}), mean {f['mean_in_flight']};"
                f" serial wall {f['serial_wall_s']} s"
            )
        print(f"findings: {len(delayed.findings)}, same as the reference: {same}")
    if not same or delayed.status != "SUCCEEDED":
        sys.exit(1)


if __name__ == "__main__":
    main()
