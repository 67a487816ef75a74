"""Who made a request, as the API and the console audit it (suppressions' ``created_by``, the logs)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent


def caller_of(event: APIGatewayProxyEvent) -> str:
    """In AWS, the IAM principal API Gateway's IAM auth put in the request context (``userArn``),
    or for the console the Cognito user its authorizer named; locally, the user whose token
    ``qrie api serve`` checked (``identity.caller``, ``local:<user>``)."""
    context = event.request_context
    named = context.authorizer.get("principalId") if context.authorizer else None
    return context.identity.user_arn or named or context.identity.caller or "unknown"
