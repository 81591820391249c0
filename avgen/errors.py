"""The one error tree of avgen.

Every error raised by avgen derives from `AvgenError` and from the builtin exception
that best matches it, so ``except ValueError`` keeps working for code that does not know
avgen::

    AvgenError
    ├── UsageError(ValueError)            bad input, raised before any work or paid call
    │   └── UnsafePathError               a path that would leave the session root
    ├── ConfigurationError(RuntimeError)  a missing optional dependency, binary or font
    ├── SessionError(RuntimeError)        a session folder that cannot be made, read or resumed
    ├── MediaError(RuntimeError)          a media file that is missing, corrupt or unusable
    │   └── FFmpegError                   an ffmpeg process that failed (carries its stderr)
    └── AgentError(RuntimeError)          an agent failed to deliver (carries the agent's name)
        ├── NoMatch                       a source has nothing for this scene (not a failure)
        ├── ModelNotFound                 the service does not serve the model asked for
        ├── ContentRejected               a safety filter refused the prompt or the output
        ├── BudgetExceeded                a paid call would go over the run's budget (not made)
        ├── RateLimited                   a quota was hit (carries the delay asked for)
        └── ServiceUnavailable            a remote service is down or its circuit is open
            └── CircuitOpen               a circuit breaker refused the call (fail fast)

`GenerationError` is raised by `avgen.VideoGenerator` when a run cannot finish; its
``__cause__`` is the error that stopped it, and its `session` attribute names the folder
that keeps every asset already made, ready to resume.
"""

from __future__ import annotations

__docformat__ = "google"

from pathlib import Path

__all__ = [
    "AgentError",
    "AvgenError",
    "BudgetExceeded",
    "CircuitOpen",
    "ConfigurationError",
    "ContentRejected",
    "FFmpegError",
    "GenerationError",
    "MediaError",
    "ModelNotFound",
    "NoMatch",
    "RateLimited",
    "ServiceUnavailable",
    "SessionError",
    "UnsafePathError",
    "UsageError",
]


class AvgenError(Exception):
    """Base class of every error avgen raises."""


class UsageError(AvgenError, ValueError):
    """Bad input: names the field and what is allowed.

    Args:
        field: The name of the offending field or argument.
        problem: What is wrong and what would be accepted.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        """The offending field or argument."""
        self.problem = problem
        """What is wrong with it and what is allowed."""
        super().__init__(f"{field}: {problem}")


class UnsafePathError(UsageError):
    """A path that would resolve outside the session root (``..``, absolute, symlink)."""


class ConfigurationError(AvgenError, RuntimeError):
    """Something avgen needs is not installed or not found (an extra, a binary, a font)."""


class SessionError(AvgenError, RuntimeError):
    """A session folder cannot be created, read, written or resumed."""


class MediaError(AvgenError, RuntimeError):
    """A media file is missing, corrupt or unusable.

    Args:
        message: What is wrong.
        path: The file concerned, when there is one.
    """

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        """The media file concerned, if any."""
        super().__init__(f"{message} ({self.path})" if self.path else message)


class FFmpegError(MediaError):
    """An ffmpeg process exited with an error.

    Args:
        message: What was being done.
        returncode: The process exit status.
        stderr: The tail of what ffmpeg printed.
        path: The output or input file concerned, if any.
    """

    def __init__(
        self, message: str, returncode: int, stderr: str, path: Path | str | None = None
    ) -> None:
        self.returncode = returncode
        """The exit status of ffmpeg."""
        self.stderr = stderr
        """The last lines ffmpeg printed."""
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        super().__init__(f"{message}: ffmpeg exited with {returncode}\n{tail}", path)


class AgentError(AvgenError, RuntimeError):
    """An agent could not deliver what it was asked for.

    Args:
        message: What went wrong.
        agent: The name of the agent.
    """

    def __init__(self, message: str, agent: str = "") -> None:
        self.agent = agent
        """The agent's name (its class name unless it gives one)."""
        super().__init__(f"{agent}: {message}" if agent else message)


class NoMatch(AgentError):
    """A picture source has nothing for the scene — a media library with no file for it,
    or only a picture where a clip was asked, a stock search with no result: the scene goes
    to the next source, as it would after a failure, but nothing failed. A run reports it
    as such (never as a fallback or an error), does not retry it, and a circuit breaker
    does not count it."""


class ModelNotFound(AgentError):
    """The service answered that it does not serve the model asked for (shut down,
    unknown, or not open to this account): a permanent error, never retried, never taken for
    an outage, never a silent fallback. A model past its shutdown date in avgen's catalogue
    is refused before anything is sent (a `UsageError`); this is what is left for the
    models the catalogue does not know, or the day Google turns one off early.

    Args:
        message: What the service said (secrets removed).
        agent: The agent that asked.
        model: The model id.
        replacement: The model to use instead, when one is known.
    """

    def __init__(self, message: str, agent: str = "", *, model: str = "",
                 replacement: str | None = None) -> None:
        self.model = model
        """The model the service does not serve."""
        self.replacement = replacement
        """The model to use instead, when one is known."""
        instead = (f"use {replacement} instead" if replacement else
                   "`avgen models --check` lists the models your key can use")
        super().__init__(f"the service does not serve {model} ({message}); {instead}", agent)


class ContentRejected(AgentError):
    """A safety filter refused the prompt or the generated media; `reason` says why."""

    def __init__(self, message: str, agent: str = "", reason: str = "") -> None:
        self.reason = reason
        """The reason the service gave, if any."""
        super().__init__(f"{message} ({reason})" if reason else message, agent)


class BudgetExceeded(AgentError):
    """A paid call was not made because it would take the run over its budget.

    Args:
        message: What was about to be paid for.
        agent: The agent that was about to pay.
        budget: The run's budget, in US dollars.
        committed: Dollars already spent or reserved by calls in flight.
        price: The price of the refused call, in US dollars.
        scope: Whose budget it is (``"the run"``, ``"the batch"``).
    """

    def __init__(self, message: str, agent: str = "", *, budget: float = 0.0,
                 committed: float = 0.0, price: float = 0.0, scope: str = "the run") -> None:
        self.budget = budget
        """The run's budget, in US dollars."""
        self.committed = committed
        """Dollars spent or reserved when the call was refused."""
        self.price = price
        """The price of the refused call, in US dollars."""
        shown = f"{budget:.2f}" if budget >= 0.01 and round(budget, 2) == budget \
            else f"{budget:.6g}"  # $0.0001 is not $0.00
        super().__init__(f"{message}: ${price:.4f} would bring {scope} to "
                         f"${committed + price:.4f}, over its budget of ${shown}", agent)


class RateLimited(AgentError):
    """A quota was exceeded; `retry_after` is the delay the service asked for, in seconds."""

    def __init__(self, message: str, agent: str = "", retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        """Seconds the service asked to wait, when it said."""
        super().__init__(message, agent)


class ServiceUnavailable(AgentError):
    """A remote service is unreachable, failing, or its circuit breaker is open.

    Args:
        message: What went wrong.
        agent: The name of the agent.
        retry_after: Seconds the service asked to wait before the next call (a 503 with
            ``Retry-After``), when it said.
    """

    def __init__(self, message: str, agent: str = "", retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        """Seconds the service asked to wait, when it said."""
        super().__init__(message, agent)


class CircuitOpen(ServiceUnavailable):
    """A circuit breaker refused the call without trying it: fail fast, do not retry.

    Args:
        message: Why the call was refused.
        agent: The breaker's name.
        remaining: Seconds until the breaker lets a trial call through (``inf`` when it
            was forced open, ``0.0`` when it is half-open and its trial calls are busy).
    """

    def __init__(self, message: str, agent: str = "", remaining: float = 0.0) -> None:
        self.remaining = remaining
        """Seconds until the breaker lets a trial call through."""
        super().__init__(message, agent)


class GenerationError(AvgenError, RuntimeError):
    """A video could not be finished; the session keeps what was made.

    Args:
        message: What failed.
        session: The session folder holding every asset already made.
    """

    def __init__(self, message: str, session: Path | None = None) -> None:
        self.session = session
        """The session folder to inspect or resume."""
        hint = (f" (assets kept in {session}; resume with `avgen resume {session}`)"
                if session else "")
        super().__init__(message + hint)
