"""``qrie notifications tail``: the notifications a local endpoint published (``qrie local up``).

Provisioning subscribes a queue to the notifications topic; this reads it from another process
(receive, print, delete), so each message shows once. In AWS, subscribe your own endpoint (email,
chat, a queue) to the stack's ``NotificationsTopicArn`` instead."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from orchestration.cli_common import AsJson, Endpoint, console, fail, out, print_json, target, user_errors

app = typer.Typer(help="Notifications of opened findings.", no_args_is_help=True)


def messages(endpoint: str, limit: int, wait_s: int) -> list[dict[str, Any]]:
    """Up to ``limit`` notifications from the tail queue, deleted once read."""
    from orchestration.provision import NOTIFICATIONS_TAIL_QUEUE

    sqs = target(endpoint).client("sqs")
    url = sqs.get_queue_url(QueueName=NOTIFICATIONS_TAIL_QUEUE)["QueueUrl"]
    found: list[dict[str, Any]] = []
    while len(found) < limit:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=min(10, limit - len(found)), WaitTimeSeconds=wait_s
        )
        received = answer.get("Messages", [])
        if not received:
            break
        for message in received:
            envelope = json.loads(message["Body"])  # the SNS envelope: Subject, Message, Timestamp
            found.append(
                {
                    "subject": envelope.get("Subject"),
                    "published_at": envelope.get("Timestamp"),
                    "message": json.loads(envelope["Message"]),
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


@app.command("tail")
def tail(
    endpoint: Endpoint = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many messages.")] = 100,
    wait: Annotated[int, typer.Option(min=0, max=20, help="Seconds to wait for a first message.")] = 0,
    as_json: AsJson = False,
) -> None:
    """Print (and consume) the notifications published on a local endpoint."""
    if not endpoint:
        raise fail(
            "EndpointRequired",
            "tail reads a local endpoint's notifications (--endpoint); in AWS, subscribe to the "
            "stack's NotificationsTopicArn",
            2,
        )
    with user_errors():
        found = messages(endpoint, limit, wait)
    if as_json:
        print_json(found)
        return
    for n in found:
        out.print(f"[bold]{n['subject']}[/] ({n['published_at']})", highlight=False)
        typer.echo(json.dumps(n["message"], indent=2))
    console.print(f"{len(found)} notifications")
