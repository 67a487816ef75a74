"""Named errors. A task raises them; the class name becomes the ASL error that Retry/Catch match."""


class QrieError(Exception):
    """Base of every error Qrie raises on purpose."""


class InvalidInput(QrieError):
    """A state-machine or task input failed validation; nothing was written."""


class UnknownService(InvalidInput):
    """A service name that is not in the service registry."""


class UnknownPolicy(InvalidInput):
    """A policy id that is not in the catalogue (or not launched, where that matters)."""


class AccountExists(InvalidInput):
    """Onboarding an account that is already onboarded (changing it is an explicit update)."""


class UnknownAccount(InvalidInput):
    """An account id that is not onboarded (nothing to change or remove)."""


class AccountAccessDenied(QrieError):
    """The customer role could not be assumed (missing role, wrong ExternalId, denied)."""


class Throttled(QrieError):
    """AWS kept throttling after the client's own retries; the state machine retries later."""


class UnexpectedResponse(QrieError):
    """An AWS API answered with a shape the collector does not understand."""


class MalformedEvent(QrieError):
    """A queued message is not a CloudTrail event we can parse."""


class PolicyNotLaunched(InvalidInput):
    """A catalogue policy that has not been launched (nothing to update, suspend or scan)."""


class Unreadable(QrieError):
    """Every describe call of one resource was denied: nothing of it is known, nothing is written."""


class UnknownFramework(InvalidInput):
    """A compliance framework id that is not in the framework registry."""


class InvalidSchedule(InvalidInput):
    """A schedule expression the local scheduler cannot fire (not EventBridge Scheduler's cron syntax)."""


class UnknownSuppression(InvalidInput):
    """A suppression rule id that does not exist."""


class AccountRequired(InvalidInput):
    """A finding named by an ARN every account shares (an AWS managed policy) without its account."""
