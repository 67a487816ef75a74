"""The AWS CDK v2 app: the operator's core stack and the customer onboarding stack."""
