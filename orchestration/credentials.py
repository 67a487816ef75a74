"""Credentials for emulated endpoints: any value is accepted there, but botocore needs some."""

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "qrie-local",
    "AWS_SECRET_ACCESS_KEY": "qrie-local",
    "AWS_SESSION_TOKEN": "qrie-local",
}
