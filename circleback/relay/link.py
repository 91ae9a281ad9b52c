"""Who triggered whom, proven only from data CircleCI exposes.

CircleCI does not return the parameters a pipeline was triggered with (``trigger_parameters``
holds only its own namespaces, or nothing), so the link between an upstream pipeline A and
a downstream pipeline B rests on two other pieces of evidence:

- **B's compiled config** (``GET /pipeline/{id}/config``): parameters are substituted into
  it, so A's id appears there wherever B's config uses the callback parameter. An id that
  also appears in B's *source* is hard-coded, not passed, and proves nothing.
- **A's trigger record**: the ``circleback/downstream.json`` artifact that A's trigger job
  stores names every pipeline it created (``circleback.relay.discovery``).

The rules built on them (the trust model in ``docs/security.md``):

- ``approve``: B may release A's hold only when A's record (in the hold's workflow) lists B,
  or B's compiled config carries A's id and A's record does not contradict it (A stores no
  record there, or one that is empty).
- ``sweep``: a hold is released only when every downstream pipeline its workflow recorded
  carries *that* held pipeline's id, so a record naming someone else's pipeline proves
  nothing.
- ``trigger``'s reconciliation adopts a pipeline only when it carries A's id and the other
  parameters can be read back as sent (``check_parameters``).

Every public function here is stable API, shared by the CLI and the webhook receiver.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from circleback import errors
from circleback.client import CircleCIClient, ParameterValue
from circleback.models import Pipeline, PipelineConfig
from circleback.relay.records import Downstream

_UUID = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}(?![0-9A-Za-z])"
)
#: Values that YAML writes as they are (never quoted or escaped), so their absence from
#: a compiled config is evidence; any other value can only be confirmed, never denied.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_./:@+-]{1,512}")


class Verdict(str, enum.Enum):
    """What the evidence says about a link."""

    PROVEN = "proven"
    """The evidence shows the link."""
    CONTRADICTED = "contradicted"
    """The evidence shows there is no such link (forged or misdirected)."""
    UNKNOWN = "unknown"
    """The evidence cannot be read or is silent: treat as not proven."""


@dataclass(frozen=True)
class Link:
    """A verdict on a link and why, in words fit for a person."""

    verdict: Verdict
    reason: str

    @property
    def proven(self) -> bool:
        """True only for ``Verdict.PROVEN``: every other verdict releases nothing."""
        return self.verdict is Verdict.PROVEN


@dataclass(frozen=True)
class ConfigEvidence:
    """What a pipeline's compiled config shows about the values it was triggered with."""

    pipeline_id: str
    """The pipeline the config belongs to."""
    readable: bool
    """False when there is no compiled text to read (still being set up, errored, hidden)."""
    carried: frozenset[str] = frozenset()
    """Pipeline ids (lower case) substituted into the config: in the compiled text, not
    in the source, and not the pipeline's own id."""
    body: str = ""
    """The compiled text(s) without comment lines."""
    source: str = ""
    """The config as committed (setup config included)."""
    why: str = ""
    """Why it is not readable, when it is not."""

    def carries(self, pipeline_id: str) -> bool:
        """True when ``pipeline_id`` was passed into this pipeline's config."""
        return pipeline_id.strip().lower() in self.carried


class LinkNotProven(errors.CirclebackError):
    """Raised when a release needs a link the evidence does not prove: nothing released.

    Exit 2 when the evidence contradicts the link (a forged or mistaken upstream id),
    exit 3 when it cannot be read or is silent ("cannot tell").
    """

    def __init__(self, message: str, link: Link, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.link = link
        self.exit_code = (
            errors.EXIT_USAGE if link.verdict is Verdict.CONTRADICTED else errors.EXIT_API
        )


def require(link: Link, action: str, *, hint: str | None = None) -> None:
    """Raise ``LinkNotProven`` unless ``link`` is proven; ``action`` names what was refused."""
    if not link.proven:
        raise LinkNotProven(
            f"Refusing to {action}: {link.reason}. Nothing was released.",
            link,
            hint=hint
            or (
                "Only the pipeline A triggered may release A: check the upstream id passed "
                "to this pipeline, and that A's trigger job stores circleback/downstream.json "
                "(see docs/security.md)."
            ),
        )


def pushed_ids(pipeline: Pipeline) -> frozenset[str]:
    """Ids (lower case) in the text a *pusher* controls: the pipeline's ``vcs`` (branch,
    tag, commit subject and body) and CircleCI's own ``trigger_parameters`` namespaces
    (``git``, ``github_app``, ``webhook``...; a top-level plain value is a sent parameter).

    Pipeline values such as ``<< pipeline.git.branch >>`` are substituted into the compiled
    config like parameters, so a branch named after a pipeline id would otherwise look
    like that id was passed by a trigger: anyone who can push could forge a link.
    """
    texts: list[str] = []
    if pipeline.vcs is not None:
        texts.append(json.dumps(pipeline.vcs.model_dump(mode="json")))
    for value in (pipeline.trigger_parameters or {}).values():
        if isinstance(value, (dict, list)):
            texts.append(json.dumps(value))
    return frozenset(m.lower() for text in texts for m in _UUID.findall(text))


def evidence_from_config(
    pipeline_id: str, config: PipelineConfig, pushed: frozenset[str] = frozenset()
) -> ConfigEvidence:
    """Read the evidence in a config document (pure; see ``read_config_evidence``).

    Both the compiled config and the compiled setup config count, so a dynamic config
    whose setup workflow uses the callback parameter is read too. ``pushed`` are ids
    that came from pipeline values (``pushed_ids``): never counted as carried.
    """
    compiled = [config.compiled, config.compiled_setup_config or ""]
    body = "\n".join(_strip_comments(text) for text in compiled if text.strip())
    source = "\n".join(t for t in (config.source, config.setup_config or "") if t)
    if not body.strip():
        return ConfigEvidence(
            pipeline_id, False, why="its compiled config is empty (not processed yet, or errored)"
        )
    if re.search(r"<<\s*pipeline\.parameters\.", body):
        # Not substituted: this text cannot show what was passed (fail closed).
        return ConfigEvidence(
            pipeline_id,
            False,
            why="its compiled config shows pipeline parameters unsubstituted",
        )
    hard_coded = {m.lower() for m in _UUID.findall(source)}
    own = pipeline_id.strip().lower()
    carried = frozenset(
        m.lower()
        for m in _UUID.findall(body)
        if m.lower() not in hard_coded and m.lower() not in pushed and m.lower() != own
    )
    return ConfigEvidence(pipeline_id, True, carried, body, source)


def read_config_evidence(
    client: CircleCIClient, pipeline_id: str, pipeline: Pipeline | None = None
) -> ConfigEvidence:
    """Fetch a pipeline's config and read its evidence.

    ``pipeline`` is the pipeline itself (``GET /pipeline/{id}``), fetched when not given:
    ids its pushed ref or commit carries are not evidence (``pushed_ids``). A 404 or 403
    (the token cannot see it) is unreadable evidence, not an error; other API failures
    propagate (exit 3), since nothing may be decided without the evidence.
    """
    try:
        if pipeline is None:
            pipeline = client.get_pipeline(pipeline_id)
        config = client.get_pipeline_config(pipeline_id)
    except (errors.NotFound, errors.PermissionDenied) as exc:
        return ConfigEvidence(pipeline_id, False, why=f"its config cannot be read ({exc.message})")
    return evidence_from_config(pipeline_id, config, pushed_ids(pipeline))


def judge_approval(
    upstream_id: str,
    downstream_id: str,
    records: Sequence[Downstream],
    evidence: ConfigEvidence | None,
) -> Link:
    """May downstream pipeline ``downstream_id`` release upstream ``upstream_id``'s hold?

    ``records`` are A's trigger records in the hold's workflow; ``evidence`` is B's own
    config (needed only when the records do not list B). Pure, so every case is testable.
    """
    down = downstream_id.strip().lower()
    if not down:
        return Link(
            Verdict.UNKNOWN,
            "this (downstream) pipeline's own id is not known, so its link to upstream "
            f"pipeline {upstream_id} cannot be checked (run inside CircleCI, where "
            "CIRCLE_PIPELINE_ID is set, or pass --downstream-pipeline-id)",
        )
    if any(r.pipeline_id.lower() == down for r in records):
        return Link(Verdict.PROVEN, f"upstream pipeline {upstream_id}'s record lists {down}")
    if records:
        listed = ", ".join(f"{r.project_slug} #{r.number}" for r in records)
        return Link(
            Verdict.CONTRADICTED,
            f"upstream pipeline {upstream_id}'s record of what its workflow triggered lists "
            f"{listed}, not this pipeline {down}: it was not triggered from there "
            "(a forged or mistaken upstream id)",
        )
    if evidence is None or not evidence.readable:
        why = evidence.why if evidence is not None else "it was not read"
        return Link(
            Verdict.UNKNOWN,
            f"upstream pipeline {upstream_id} stores no trigger record, and this pipeline's "
            f"config cannot show the link: {why}",
        )
    if evidence.carries(upstream_id):
        return Link(
            Verdict.PROVEN,
            f"this pipeline's compiled config carries {upstream_id}, and the upstream "
            "stores no record that contradicts it",
        )
    return Link(
        Verdict.CONTRADICTED,
        f"this pipeline's compiled config does not carry upstream id {upstream_id} (the "
        "config must use the callback parameter, e.g. in the approve job's environment)",
    )


def prove_approval(
    client: CircleCIClient,
    upstream_id: str,
    downstream_id: str,
    records: Sequence[Downstream],
) -> Link:
    """``judge_approval``, reading B's config only when A's records do not settle it."""
    down = downstream_id.strip().lower()
    if not down or any(r.pipeline_id.lower() == down for r in records):
        return judge_approval(upstream_id, downstream_id, records, None)
    return judge_approval(
        upstream_id, downstream_id, records, read_config_evidence(client, downstream_id)
    )


def judge_sweep(
    held_id: str, records: Sequence[Downstream], evidence: Mapping[str, ConfigEvidence]
) -> Link:
    """May a sweep release held pipeline ``held_id``, given what its workflow recorded?

    Every recorded downstream pipeline must carry ``held_id``: a record is written by the
    held pipeline itself, so on its own it proves nothing about who triggered what.
    """
    if not records:
        return Link(Verdict.UNKNOWN, "no downstream record (not triggered by circleback?)")
    for record in records:
        seen = evidence.get(record.pipeline_id)
        name = f"{record.project_slug} #{record.number}"
        if seen is None or not seen.readable:
            why = seen.why if seen is not None else "its config was not read"
            return Link(Verdict.UNKNOWN, f"cannot prove {name} was triggered by it: {why}")
        if not seen.carries(held_id):
            return Link(
                Verdict.CONTRADICTED,
                f"recorded downstream {name} does not carry this pipeline's id {held_id}: "
                "the record names a pipeline it did not trigger (forged?)",
            )
    return Link(Verdict.PROVEN, "every recorded downstream pipeline carries its id")


def prove_sweep(client: CircleCIClient, held_id: str, records: Sequence[Downstream]) -> Link:
    """``judge_sweep`` after reading each recorded downstream pipeline's config."""
    evidence: dict[str, ConfigEvidence] = {}
    for record in records:
        evidence[record.pipeline_id] = read_config_evidence(client, record.pipeline_id)
        if not evidence[record.pipeline_id].carries(held_id):
            break  # the verdict is settled; spare the other requests
    return judge_sweep(held_id, records, evidence)


@dataclass(frozen=True)
class ParameterCheck:
    """How a pipeline's config compares with the parameters a trigger sent."""

    contradicted: tuple[str, ...] = ()
    """Names the config uses but whose sent value it does not show: sent otherwise."""
    unverifiable: tuple[str, ...] = ()
    """Names whose value cannot be read back (the config does not use them, or the value
    is one YAML may quote or escape)."""

    @property
    def matches(self) -> bool:
        """Every parameter was read back as sent."""
        return not self.contradicted and not self.unverifiable


def check_parameters(
    evidence: ConfigEvidence, parameters: Mapping[str, ParameterValue]
) -> ParameterCheck:
    """Compare ``parameters`` with what ``evidence`` shows (the callback one excluded by
    the caller). A value shows when it stands as a whole token in the compiled text."""
    contradicted: list[str] = []
    unverifiable: list[str] = []
    for name, value in parameters.items():
        text = _as_yaml(value)
        used = re.search(
            rf"pipeline\.parameters\.{re.escape(name)}(?![A-Za-z0-9_-])", evidence.source
        )
        shown = bool(text) and re.search(
            rf"(?<![A-Za-z0-9_.-]){re.escape(text)}(?![A-Za-z0-9_.-])", evidence.body
        )
        if shown and used:
            continue
        if used and _PLAIN_VALUE.fullmatch(text):
            contradicted.append(name)
        else:
            unverifiable.append(name)
    return ParameterCheck(tuple(contradicted), tuple(unverifiable))


def _as_yaml(value: ParameterValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


__all__ = [
    "ConfigEvidence",
    "Link",
    "LinkNotProven",
    "ParameterCheck",
    "Verdict",
    "check_parameters",
    "evidence_from_config",
    "judge_approval",
    "judge_sweep",
    "prove_approval",
    "prove_sweep",
    "pushed_ids",
    "read_config_evidence",
    "require",
]
