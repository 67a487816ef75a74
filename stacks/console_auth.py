"""The console's browser sign-in: a Cognito user pool (admin-created users, TOTP MFA), its managed
login, and a Lambda REQUEST authorizer on ``/console`` that checks the session cookie the console's
callback sets. Every other API route keeps IAM (SigV4) authorization for machines.

A browser cannot sign requests or send an ``Authorization`` header on a link, and API Gateway's
Cognito authorizer reads only a header: hence the cookie and a REQUEST authorizer
(``tasks/console_authorizer.py``) that verifies the Cognito ID token in it against the pool's keys.

The client is public with PKCE (no secret): the code is exchanged by the API Lambda, and the
verifier lives in an HttpOnly cookie of the browser that started the sign-in, so an intercepted
code is useless; a confidential client would need its secret in the Lambda's environment or in
Secrets Manager, for no added protection here.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from qrie_lib.console.render import PREFIX
from stacks.common import acknowledge

DOMAIN_PREFIX_CONTEXT = (
    "qrie:consoleDomainPrefix"  # the managed login's <prefix>.auth.<region>.amazoncognito.com
)
STAGE = "v1"  # the API's stage: a literal, so URLs built from it do not depend on the Stage resource
CALLBACK_PATH = f"{PREFIX}/auth/callback"
LOGIN_PATH = f"{PREFIX}/auth/login"
ID_TOKEN_VALIDITY = Duration.hours(1)  # the session cookie lives as long as its ID token
AUTHORIZER_CACHE = Duration.minutes(5)  # per Cookie header; the policy covers every console path


class ConsoleAuth(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.RestApi,
        console: lambda_.IFunction,  # the API Lambda, which serves the pages and the callback
        authorizer: lambda_.Function,
        domain_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        # From the API's id and the literal stage, not api.url: the authorizer's function needs the
        # client's id, and the Stage depends (through its deployment) on the authorizer.
        self.console_url = (
            f"https://{api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{STAGE}{PREFIX}"
        )
        self.user_pool = self._user_pool()
        self.client = self._client(self.console_url)
        self.client_id = self.client.user_pool_client_id
        self.domain = self.user_pool.add_domain(
            "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=domain_prefix)
        )
        self.auth_domain = f"https://{domain_prefix}.auth.{Aws.REGION}.amazoncognito.com"
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "Authorizer",
            handler=authorizer,
            identity_sources=[apigw.IdentitySource.header("Cookie")],  # no cookie: 401 at once
            results_cache_ttl=AUTHORIZER_CACHE,
        )
        self._routes(api, apigw.LambdaIntegration(console))
        CfnOutput(scope, "ConsoleUrl", value=f"{self.console_url}/")
        CfnOutput(scope, "ConsoleUserPoolId", value=self.user_pool.user_pool_id)

    def _user_pool(self) -> cognito.UserPool:
        pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,  # operators create console users (README: admin-create-user)
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),  # TOTP: no SMS role or cost
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for rule in ("AwsSolutions-COG3", "AwsSolutions-COG8"):  # threat protection; the Plus plan
            acknowledge(
                pool,
                rule,
                "Threat protection (advanced security) needs the Plus feature plan, billed per user; "
                "the pool has admin-created users only, a 14-character policy and required TOTP MFA.",
            )
        return pool

    def _client(self, console_url: str) -> cognito.UserPoolClient:
        return self.user_pool.add_client(
            "Client",
            generate_secret=False,  # public client with PKCE (module docstring)
            auth_flows=cognito.AuthFlow(),  # managed login only: no password flows through the API
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[f"{console_url}/auth/callback"],
                logout_urls=[f"{console_url}/"],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            id_token_validity=ID_TOKEN_VALIDITY,
            access_token_validity=ID_TOKEN_VALIDITY,
            refresh_token_validity=Duration.hours(8),
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
        )

    def _routes(self, api: apigw.RestApi, integration: apigw.LambdaIntegration) -> None:
        """``/console`` and below through the authorizer; ``/console/auth/*`` (login, callback,
        logout) open, as a browser reaches them before it has a session."""
        console = api.root.add_resource(PREFIX.strip("/"), default_integration=integration)
        for resource in (console, console.add_proxy(any_method=False)):
            resource.add_method(
                "ANY", authorization_type=apigw.AuthorizationType.CUSTOM, authorizer=self.authorizer
            )
        auth = console.add_resource("auth").add_proxy(any_method=False)
        auth.add_method("ANY", authorization_type=apigw.AuthorizationType.NONE)
        acknowledge(
            auth,
            "AwsSolutions-APIG4",
            "The sign-in routes (login, callback, logout) are reached before there is a session; "
            "the callback accepts only a code bound to this browser's PKCE verifier and state cookie.",
        )
        acknowledge(
            auth,
            "AwsSolutions-COG4",
            "The sign-in routes run before a session exists; the console's other routes use the "
            "session authorizer, which verifies a Cognito ID token from a cookie (a browser sends "
            "no Authorization header, which is all the Cognito authorizer reads).",
        )
        acknowledge(
            console,
            "AwsSolutions-COG4",
            "A REQUEST authorizer verifies the session cookie's Cognito ID token (signature against "
            "the pool's keys, issuer, audience, expiry): the Cognito authorizer reads a header only.",
        )
        # The authorizer's 401 (no or bad session) sends the browser to sign in. UNAUTHORIZED is
        # raised by custom authorizers only; IAM failures are MISSING_AUTHENTICATION_TOKEN or 403s.
        api.add_gateway_response(
            "ConsoleSignIn",
            type=apigw.ResponseType.UNAUTHORIZED,
            status_code="302",
            response_headers={"Location": f"'/{STAGE}{LOGIN_PATH}'", "Cache-Control": "'no-store'"},
        )
