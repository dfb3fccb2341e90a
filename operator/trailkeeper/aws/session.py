"""boto3 clients for every (service, region, account) the operator works in.

One :class:`AwsSessions` is made at start-up and passed down to whatever talks to AWS; nothing
here is a module-level singleton. It

* caches one client per (service, region) for the operator's own account, and one per (service,
  region) shared by every assumed-role account — boto3 clients are thread-safe, making them is not
  cheap, and a botocore client holds a few hundred KB (its event hooks, model, endpoint rules, class),
  so one per account, service and region made memory grow by megabytes per account (the compliance
  observation alone reaches every enabled region). An account gets a view of the shared client
  (:class:`_AccountClient`) that binds each call to the account; the shared client's credentials
  (:class:`_ActingCredentials`) are those of the account the current call is bound to, and none
  outside a bound call, so a call can never sign as another account, nor as the operator's own;
* assumes a Trail's ``account.roleArn`` through STS and refreshes those credentials itself,
  5 minutes before they expire, so a cached client never signs with expired credentials;
* paces every call through the :class:`~trailkeeper.aws.ratelimit.RateLimiter` and records it
  in the :class:`~trailkeeper.aws.calls.CallRecorder`, by event hooks on each client, so no
  caller can forget either.

Calls block (rate limiter, network): from async code, call through ``asyncio.to_thread``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials, RefreshableCredentials
from botocore.exceptions import NoCredentialsError

from trailkeeper import __version__
from trailkeeper.api.common import botocore_loader
from trailkeeper.aws.calls import OUTCOME_OK, AwsCall, CallRecorder, is_mutating
from trailkeeper.aws.errors import UNPARSABLE_ANSWERS, note_operation
from trailkeeper.aws.ratelimit import RateLimiter, RateLimitTimeoutError
from trailkeeper.aws.read_memo import ReadMemo
from trailkeeper.aws.reads import Reads

if TYPE_CHECKING:
    from botocore.model import OperationModel
    from mypy_boto3_cloudtrail.client import CloudTrailClient
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sts.client import STSClient

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "REFRESH_MARGIN_SECONDS",
    "ROLE_SESSION_NAME",
    "AccountRef",
    "AwsSessions",
    "is_mutating",
    "role_session_name",
]

DEFAULT_MAX_ATTEMPTS = 5
ROLE_SESSION_NAME = "trailkeeper"
# Assumed-role credentials are replaced this long before they expire: long enough that a call
# signed just before the refresh still reaches AWS in time, including its retries.
REFRESH_MARGIN_SECONDS = 5 * 60
DEFAULT_ACCOUNT_LABEL = "default"
# Connections a shared assumed-role client keeps per endpoint: above the operator's default 16 workers.
SHARED_POOL_CONNECTIONS = 32

_ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::(\d{12}):role/.+$")
# STS AssumeRole's RoleSessionName: 2 to 64 of these characters.
SESSION_NAME_MAX = 64
_SESSION_NAME_CHARS = re.compile(r"[^\w+=,.@-]")


def role_session_name(namespace: str, name: str) -> str:
    """The session name of the role a Trail assumes: `tk@<namespace>.<name>`, so that CloudTrail's own
    record of each call the operator makes for it names the Trail (userIdentity.arn ends in it).

    A namespace has no `.`, so the first one separates the two. Longer than AWS's 64 characters, it is
    cut and ends in a hash of the whole, as owner tags are: unique per Trail and the same on every run.
    """
    full = _SESSION_NAME_CHARS.sub("-", f"tk@{namespace}.{name}")
    if len(full) <= SESSION_NAME_MAX:
        return full
    suffix = "-" + hashlib.sha256(full.encode("utf-8")).hexdigest()[:12]
    return full[: SESSION_NAME_MAX - len(suffix)] + suffix


# Keys this module keeps in botocore's per-request context dict.
_CTX_OPERATION = "trailkeeper.operation"
_CTX_STARTED = "trailkeeper.started"
_CTX_WAITED = "trailkeeper.waited"
_CTX_MEMO = "trailkeeper.memo"


@dataclass(frozen=True)
class AccountRef:
    """The account to act in: assume ``role_arn`` (with ``external_id`` when the role's trust
    policy requires one). ``None`` in its place means the operator's own credentials."""

    role_arn: str
    external_id: str | None = None
    # Part of the key: each session name is a credentials set of its own, cached until near expiry.
    session_name: str = ROLE_SESSION_NAME

    def __post_init__(self) -> None:
        if not _ROLE_ARN.match(self.role_arn):
            raise ValueError(f"not an IAM role ARN: {self.role_arn!r}")
        if not 2 <= len(self.session_name) <= SESSION_NAME_MAX or _SESSION_NAME_CHARS.search(
            self.session_name
        ):
            raise ValueError(f"not a role session name: {self.session_name!r}")

    @classmethod
    def from_spec(cls, role_arn: str | None, external_id: str | None = None) -> AccountRef | None:
        """``None`` when no role is given (the spec's ``account.roleArn`` is null)."""
        return cls(role_arn, external_id) if role_arn else None

    @functools.cached_property
    def arn_account(self) -> str:
        """The account id written in the role ARN. A label for rate limits and call records;
        the account the credentials really act in comes from :meth:`AwsSessions.account_id`."""
        match = _ROLE_ARN.match(self.role_arn)
        assert match is not None  # checked in __post_init__
        return match.group(1)


def account_label(account: AccountRef | None) -> str:
    return account.arn_account if account else DEFAULT_ACCOUNT_LABEL


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _StaticProvider(CredentialProvider):
    """Hands one credentials object (refreshing itself) to a botocore session."""

    METHOD = "trailkeeper-assume-role"
    CANONICAL_NAME = "TrailkeeperAssumeRole"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


# The assumed-role account the current call acts in: set by an _AccountClient for the length of one call
# (or one page of a listing), read by the shared clients' credentials and call hooks. A context variable,
# so that threads (and asyncio tasks) calling at the same time each see their own.
_ACTING_AS: ContextVar[AccountRef | None] = ContextVar("trailkeeper_acting_as", default=None)


class UnboundCallError(RuntimeError):
    """A call through a shared assumed-role client that no _AccountClient bound to an account."""


def _acting_as(account: AccountRef, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    token = _ACTING_AS.set(account)
    try:
        return call(*args, **kwargs)
    finally:
        _ACTING_AS.reset(token)


class _ActingCredentials(Credentials):
    """The credentials of the shared assumed-role clients: the refreshing credentials of the account the
    current call is bound to. botocore asks for them at every signature (retries and redirects included),
    so each request signs as its own account. Outside a bound call there are none: nothing is signed."""

    def __init__(self, lookup: Callable[[AccountRef], RefreshableCredentials]) -> None:
        # Not Credentials.__init__: the keys are never this object's own, only the bound account's.
        self.method = _StaticProvider.METHOD
        self.account_id = None
        self._lookup = lookup

    def get_frozen_credentials(self) -> Any:
        account = _ACTING_AS.get()
        if account is None:
            raise NoCredentialsError()
        return self._lookup(account).get_frozen_credentials()


class _AccountPages:
    """The pages of a paginated listing, each fetched bound to the account (pages are fetched lazily,
    after `paginate` has returned)."""

    def __init__(self, pages: Any, account: AccountRef) -> None:
        self._pages = pages
        self._account = account

    def __iter__(self) -> Iterator[Any]:
        pages = _acting_as(self._account, iter, self._pages)
        while True:
            try:
                page = _acting_as(self._account, next, pages)
            except StopIteration:
                return
            yield page

    def build_full_result(self) -> Any:
        return _acting_as(self._account, self._pages.build_full_result)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pages, name)


class _AccountPaginator:
    def __init__(self, paginator: Any, account: AccountRef) -> None:
        self._paginator = paginator
        self._account = account

    def paginate(self, **kwargs: Any) -> _AccountPages:
        return _AccountPages(self._paginator.paginate(**kwargs), self._account)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._paginator, name)


class _AccountClient:
    """A client acting in one assumed-role account: the (service, region) client all assumed-role accounts
    share, with each API call (and each page of a paginator) bound to this account. Everything else
    (``exceptions``, ``meta``, ``can_paginate``) is the shared client's."""

    def __init__(self, client: Any, account: AccountRef) -> None:
        self._client = client
        self._account = account
        self._api = client.meta.method_to_api_mapping

    def get_paginator(self, operation_name: str) -> _AccountPaginator:
        return _AccountPaginator(self._client.get_paginator(operation_name), self._account)

    def get_waiter(self, waiter_name: str) -> Any:
        raise NotImplementedError("waiters are not bound to an account; poll with the client's calls")

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name in self._api:
            return functools.partial(_acting_as, self._account, attribute)
        return attribute


_SESSION_LOCK = threading.Lock()


def _new_session(region: str | None, credentials: Credentials | None = None) -> boto3.session.Session:
    core = botocore.session.Session()
    # One loader of botocore's data for the process (api.common.botocore_loader), which the API's region
    # check shares: each botocore session otherwise parses the service JSON again (~0.1 s per client, more
    # for S3), and the sessions of every AwsSessions (one per test) would pay that every time. The models
    # are static files, so sharing the cache cannot leak state between accounts.
    loader = botocore_loader()
    core.register_component("data_loader", loader)
    if credentials is not None:
        # Replace the whole credential chain: clients of this session must never fall back on
        # the operator's own credentials.
        core.register_component("credential_provider", CredentialResolver([_StaticProvider(credentials)]))
    with _SESSION_LOCK:
        session = boto3.session.Session(botocore_session=core, region_name=region)
        # boto3 appends its own data directory to the loader's search path for every new
        # session; with a shared loader the list would grow without end.
        paths = loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return session


class _Body:
    """An answer's body, already read: what botocore's AWSResponse reads its content from."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


def _kept(http_response: AWSResponse) -> AWSResponse:
    """An answer as the read memo keeps it: URL, status, headers and body, without the connection's
    response objects (urllib3's and http.client's, about 20 KB an answer), which the memo of every
    account's reads would otherwise hold for as long as it keeps the answer."""
    # botocore makes the headers a HeadersDict, its stubs say HTTPHeaders: the same object is passed on.
    headers: Any = http_response.headers
    return AWSResponse(http_response.url, http_response.status_code, headers, _Body(http_response.content))


class _CallHooks:
    """Event handlers for one client: rate-limit before the call, record after it."""

    def __init__(self, sessions: AwsSessions, service: str, region: str, account: str | None) -> None:
        """`account`: the label of the client's account; None for a shared assumed-role client, whose
        calls each act in the account they are bound to."""
        self._sessions = sessions
        self._service = service
        self._region = region
        self._fixed_account = account

    @property
    def _account(self) -> str:
        if self._fixed_account is not None:
            return self._fixed_account
        account = _ACTING_AS.get()
        if account is None:
            # Before the memo and the limiter: no answer of any account is given to an unbound call.
            raise UnboundCallError(f"a {self._service} call through a shared client, bound to no account")
        return account.arn_account

    def register(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-call", self.before_call)
        events.register("after-call", self.after_call)
        events.register("after-call-error", self.after_call_error)

    def before_call(
        self, model: OperationModel, context: dict[str, Any], params: dict[str, Any] | None = None, **_: Any
    ) -> tuple[Any, dict[str, Any]] | None:
        operation = model.name
        context[_CTX_OPERATION] = operation
        memo = self._sessions.memo
        if is_mutating(operation):
            memo.forget(self._account, self._service)
        else:
            key = memo.key(self._account, self._service, self._region, operation, params or {})
            if key is not None:
                answer = memo.lookup(key)
                if answer is not None:
                    # botocore takes a handler's (http response, parsed) as the answer: no request is sent.
                    context[_CTX_MEMO] = None
                    return answer
                context[_CTX_MEMO] = key
        try:
            waited = self._sessions.rate_limiter.acquire(
                self._account,
                self._region,
                self._service,
                operation,
                timeout=self._sessions.rate_limit_timeout,
            )
        except RateLimitTimeoutError as exc:
            self._record(operation, type(exc).__name__, 0.0, exc.timeout)
            raise
        context[_CTX_WAITED] = waited
        context[_CTX_STARTED] = time.perf_counter()
        return None

    def after_call(
        self,
        http_response: AWSResponse,
        parsed: dict[str, Any],
        model: OperationModel,
        context: dict[str, Any],
        **_: Any,
    ) -> None:
        if _CTX_MEMO in context and context[_CTX_MEMO] is None:
            return  # answered from the memo: no call was made
        status = http_response.status_code
        outcome = OUTCOME_OK if status < 300 else str(parsed.get("Error", {}).get("Code") or status)
        if status < 300 and context.get(_CTX_MEMO) is not None:
            self._sessions.memo.store(context[_CTX_MEMO], _kept(http_response), parsed)
        self._finish(model.name, outcome, context)

    def after_call_error(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        # No response at all (connection failure, timeout) after botocore's own retries, or one that
        # could not be parsed.
        operation = str(context.get(_CTX_OPERATION, "?"))
        if isinstance(exception, UNPARSABLE_ANSWERS):
            # Neither exception names the call; classify() reads it from this note.
            note_operation(exception, operation)
        self._finish(operation, type(exception).__name__, context)

    def _finish(self, operation: str, outcome: str, context: dict[str, Any]) -> None:
        started = context.get(_CTX_STARTED)
        seconds = time.perf_counter() - started if isinstance(started, float) else 0.0
        self._record(operation, outcome, seconds, float(context.get(_CTX_WAITED, 0.0)))

    def _record(self, operation: str, outcome: str, seconds: float, waited: float) -> None:
        recorder = self._sessions.recorder
        if recorder is None:
            return
        recorder.record(
            AwsCall(
                service=self._service,
                operation=operation,
                region=self._region,
                account=self._account,
                outcome=outcome,
                seconds=seconds,
                mutating=is_mutating(operation),
                waited=waited,
            )
        )


class AwsSessions:
    """Factory and cache of boto3 clients, per (service, region, account): the own account's, and views
    of the (service, region) clients the assumed-role accounts share."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        default_region: str | None = None,
        rate_limiter: RateLimiter | None = None,
        recorder: CallRecorder | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        rate_limit_timeout: float | None = 120.0,
        role_duration_seconds: int = 3600,
        base_session: boto3.session.Session | None = None,
        clock: Callable[[], datetime] = _utc_now,
        session_name: str | None = None,
    ) -> None:
        """
        :param endpoint_url: send every call here (moto, a proxy); ``None`` leaves it to boto3,
            which honours ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` itself.
        :param default_region: region for STS and for calls that name none; falls back to
            ``AWS_REGION`` and then to boto3's own resolution.
        :param rate_limiter: defaults to :meth:`RateLimiter.from_env`.
        :param max_attempts: botocore ``total_max_attempts`` (1 turns its retries off).
        :param rate_limit_timeout: longest wait for a rate-limit token before the call fails
            with :class:`RateLimitTimeoutError` (a throttle, to the error taxonomy).
        :param clock: current time (aware), for credential expiry; injectable for tests.
        :param session_name: every role's session name instead of the object's own, for a run whose reads
            each serve all the objects of an account (`diff`): a role is then assumed once per run.
        """
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._explicit_endpoint = endpoint_url
        self._base = base_session or _new_session(None)
        self.default_region: str | None = (
            default_region or os.environ.get("AWS_REGION") or self._base.region_name or None
        )
        self.rate_limiter = rate_limiter if rate_limiter is not None else RateLimiter.from_env()
        self.recorder = recorder
        # The read layer (aws/reads.py), one per process: the reconciles' shared reads, the answers drift
        # checks leave for the compliance observation (`memo`, used only inside `memo.scope(...)`), the
        # observations and the enabled regions all live in it.
        self.reads = Reads()
        self.memo = ReadMemo(self.reads)
        self.max_attempts = max_attempts
        self.rate_limit_timeout = rate_limit_timeout
        self.role_duration_seconds = role_duration_seconds
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._clock = clock
        # One lock for all caches: boto3 sessions are not thread-safe while creating clients,
        # and creation is rare (once per key), so contention does not matter.
        self._lock = threading.RLock()
        # What client() hands out: the own account's clients, and the assumed-role accounts' views.
        self._clients: dict[tuple[str, str, AccountRef | None], Any] = {}
        # The clients every assumed-role account shares, per (service, region), and their session.
        self._shared: dict[tuple[str, str], Any] = {}
        self._role_session: boto3.session.Session | None = None
        self._role_credentials: dict[AccountRef, RefreshableCredentials] = {}
        self._account_ids: dict[AccountRef | None, str] = {}
        self._session_name, self._renamed = session_name, dict[AccountRef, AccountRef]()

    def _botocore_clients(self) -> list[Any]:
        """The botocore clients made (under the lock): the own account's and the shared assumed-role ones;
        an account's views of the shared ones are not clients."""
        own = [client for (_, _, account), client in self._clients.items() if account is None]
        return own + list(self._shared.values())

    @property
    def live_clients(self) -> int:
        """How many botocore clients exist (the memory bench reports it)."""
        with self._lock:
            return len(self._botocore_clients())

    @property
    def endpoint_url(self) -> str | None:
        """Where calls go: the explicit endpoint, else ``AWS_ENDPOINT_URL``, else AWS."""
        return self._explicit_endpoint or os.environ.get("AWS_ENDPOINT_URL") or None

    # -- clients ---------------------------------------------------------------------------

    @overload
    def client(
        self, service: Literal["cloudtrail"], region: str | None = ..., account: AccountRef | None = ...
    ) -> CloudTrailClient: ...
    @overload
    def client(
        self, service: Literal["s3"], region: str | None = ..., account: AccountRef | None = ...
    ) -> S3Client: ...
    @overload
    def client(
        self, service: Literal["sns"], region: str | None = ..., account: AccountRef | None = ...
    ) -> SNSClient: ...
    @overload
    def client(
        self, service: Literal["sts"], region: str | None = ..., account: AccountRef | None = ...
    ) -> STSClient: ...
    @overload
    def client(
        self, service: Literal["ec2"], region: str | None = ..., account: AccountRef | None = ...
    ) -> EC2Client: ...
    @overload
    def client(self, service: str, region: str | None = ..., account: AccountRef | None = ...) -> Any: ...
    def client(self, service: str, region: str | None = None, account: AccountRef | None = None) -> Any:
        """The cached client for ``service`` in ``region`` acting in ``account``."""
        account = self._run_account(account)
        region = region or self.default_region
        if not region:
            raise ValueError(f"no region for a {service} client: pass one or set AWS_REGION")
        key = (service, region, account)
        # Lock-free fast path: a dict read is atomic, and credential refreshes (which call STS
        # from inside another client's request signing) must not queue behind client creation.
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if account is None:
                    client = self._new_client(self._base, service, region, DEFAULT_ACCOUNT_LABEL)
                else:
                    # The role is assumed here, on first use, so that a denied role fails where it did.
                    self._credentials_for(account)
                    client = _AccountClient(self._shared_client(service, region), account)
                self._clients[key] = client
            return client

    def _shared_client(self, service: str, region: str) -> Any:
        """The (service, region) client of every assumed-role account. Called under the lock."""
        client = self._shared.get((service, region))
        if client is None:
            if self._role_session is None:
                self._role_session = _new_session(
                    self.default_region, _ActingCredentials(self._credentials_for)
                )
            client = self._new_client(self._role_session, service, region, None)
            self._shared[(service, region)] = client
        return client

    def _new_client(
        self, session: boto3.session.Session, service: str, region: str, label: str | None
    ) -> Any:
        # boto3-stubs types Session.client per literal service name only.
        make_client: Callable[..., Any] = session.client
        client = make_client(
            service,
            region_name=region,
            endpoint_url=self._explicit_endpoint,
            config=self._config(service, shared=label is None),
        )
        _CallHooks(self, service, region, label).register(client)
        return client

    def _config(self, service: str, *, shared: bool = False) -> Config:
        config = Config(
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            user_agent_extra=f"trailkeeper/{__version__}",
        )
        if shared:
            # Many accounts' calls at once: as many connections as one client per account would keep to
            # the endpoint at once (botocore's default is 10 per client).
            config = config.merge(Config(max_pool_connections=SHARED_POOL_CONNECTIONS))
        if service == "s3" and self.endpoint_url:
            # A local endpoint has no per-bucket DNS names: address buckets in the path.
            config = config.merge(Config(s3={"addressing_style": "path"}))
        return config

    # -- accounts and credentials ----------------------------------------------------------

    def account_id(self, account: AccountRef | None = None) -> str:
        """The 12-digit account the credentials for ``account`` act in: for a role, what its AssumeRole
        answered; else STS GetCallerIdentity, asked once per account."""
        account = self._run_account(account)
        with self._lock:
            cached = self._account_ids.get(account)
        if cached is not None:
            return cached
        if account is not None:
            self._credentials_for(account)
            with self._lock:
                cached = self._account_ids.get(account)
            if cached is not None:
                return cached
        identity = self.client("sts", None, account).get_caller_identity()
        account_id = identity["Account"]
        with self._lock:
            self._account_ids[account] = account_id
        return account_id

    def _run_account(self, account: AccountRef | None) -> AccountRef | None:
        """``account`` under the run's session name, when the sessions were given one."""
        if account is None or self._session_name is None:
            return account
        renamed = self._renamed.get(account)
        if renamed is None:
            renamed = self._renamed.setdefault(account, replace(account, session_name=self._session_name))
        return renamed

    def _credentials_for(self, account: AccountRef) -> RefreshableCredentials:
        """The account's refreshing credentials; the role is assumed on first use (once, under the lock)."""
        credentials = self._role_credentials.get(account)
        if credentials is None:
            with self._lock:
                credentials = self._role_credentials.get(account)
                if credentials is None:
                    credentials = self._assumed_credentials(account)
                    self._role_credentials[account] = credentials
        return credentials

    def _assumed_credentials(self, account: AccountRef) -> RefreshableCredentials:
        first = self._assume_role(account)
        # botocore refreshes on its own once the clock is within the margin of expiry (it locks
        # so that one thread refreshes while the others wait) and raises if that refresh fails.
        return RefreshableCredentials(
            access_key=first["access_key"],
            secret_key=first["secret_key"],
            token=first["token"],
            expiry_time=datetime.fromisoformat(first["expiry_time"]),
            refresh_using=lambda: self._assume_role(account),
            method=_StaticProvider.METHOD,
            time_fetcher=self._clock,
            advisory_timeout=REFRESH_MARGIN_SECONDS,
            mandatory_timeout=REFRESH_MARGIN_SECONDS,
        )

    def _assume_role(self, account: AccountRef) -> dict[str, str]:
        """One STS AssumeRole, in the shape botocore's refreshable credentials take."""
        sts = self.client("sts", None, None)
        if account.external_id:
            response = sts.assume_role(
                RoleArn=account.role_arn,
                RoleSessionName=account.session_name,
                DurationSeconds=self.role_duration_seconds,
                ExternalId=account.external_id,
            )
        else:
            response = sts.assume_role(
                RoleArn=account.role_arn,
                RoleSessionName=account.session_name,
                DurationSeconds=self.role_duration_seconds,
            )
        # The assumed role's ARN (arn:<partition>:sts::<account>:assumed-role/...) names the account its
        # credentials act in: what GetCallerIdentity would answer, without the call.
        assumed = str((response.get("AssumedRoleUser") or {}).get("Arn") or "").split(":")
        if len(assumed) > 4 and assumed[4].isdigit():
            with self._lock:
                self._account_ids.setdefault(account, assumed[4])
        credentials = response["Credentials"]
        expiration = credentials["Expiration"]
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat(),
        }

    def close(self) -> None:
        """Close every cached client's connection pool; the object stays usable."""
        with self._lock:
            clients = self._botocore_clients()
            self._clients.clear()
            self._shared.clear()
        for client in clients:
            client.close()
