"""Proof of the link between pipelines (``circleback.relay.link``), from config and records."""

from __future__ import annotations

from circleback.models import PipelineConfig
from circleback.relay.link import (
    Verdict,
    check_parameters,
    evidence_from_config,
    judge_approval,
    judge_sweep,
)
from circleback.relay.records import Downstream

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
OTHER = "33333333-3333-4333-8333-333333333333"
HARD = "44444444-4444-4444-8444-444444444444"

SOURCE = """version: 2.1
parameters:
  triggering-pipeline-id: {type: string, default: ""}
  requested-by: {type: string, default: "nobody"}
jobs:
  callback:
    environment:
      UPSTREAM: << pipeline.parameters.triggering-pipeline-id >>
      WHO: << pipeline.parameters.requested-by >>
      FIXED: 44444444-4444-4444-8444-444444444444
"""


def compiled(upstream: str, who: str = "staging", own: str = B) -> PipelineConfig:
    body = (
        "version: 2\njobs:\n  callback:\n    environment:\n"
        f"      UPSTREAM: {upstream}\n      WHO: {who}\n      FIXED: {HARD}\n"
        f"      SELF: {own}\n"
    )
    comments = "\n".join(f"# {line}" for line in SOURCE.splitlines())
    return PipelineConfig.model_validate({"source": SOURCE, "compiled": body + comments})


def record(pid: str, slug: str = "gh/acme/b", number: int = 1) -> Downstream:
    return Downstream(slug, pid, number, "created", "")


def test_compiled_config_carries_the_passed_id_only() -> None:
    ev = evidence_from_config(B, compiled(A))
    assert ev.readable
    assert ev.carries(A)
    assert not ev.carries(HARD)  # hard-coded in the source: proves nothing
    assert not ev.carries(B)  # the pipeline's own id
    assert not ev.carries(OTHER)


def test_an_id_only_in_the_source_comments_is_not_carried() -> None:
    config = PipelineConfig(source=f"# {A}\n", compiled=f"version: 2\n# {A}\n")
    assert not evidence_from_config(B, config).carries(A)


def test_empty_compiled_config_is_unreadable() -> None:
    ev = evidence_from_config(B, PipelineConfig(source=SOURCE, compiled=""))
    assert not ev.readable
    assert "empty" in ev.why


def test_setup_config_counts() -> None:
    config = PipelineConfig.model_validate(
        {"source": "", "compiled": "", "setup-config": SOURCE, "compiled-setup-config": A}
    )
    assert evidence_from_config(B, config).carries(A)


def test_approval_proven_by_a_record_listing_b() -> None:
    assert judge_approval(A, B, [record(B)], None).verdict is Verdict.PROVEN


def test_approval_contradicted_by_a_record_naming_others() -> None:
    # Why: A triggered gh/acme/c and waits; someone triggers gh/acme/b with A's id.
    link = judge_approval(A, B, [record(OTHER, "gh/acme/c")], evidence_from_config(B, compiled(A)))
    assert link.verdict is Verdict.CONTRADICTED
    assert "gh/acme/c #1" in link.reason


def test_approval_by_config_when_a_stores_no_record() -> None:
    link = judge_approval(A, B, [], evidence_from_config(B, compiled(A)))
    assert link.proven


def test_approval_refused_when_config_does_not_carry_a() -> None:
    link = judge_approval(A, B, [], evidence_from_config(B, compiled(OTHER)))
    assert link.verdict is Verdict.CONTRADICTED


def test_approval_unknown_when_config_unreadable() -> None:
    ev = evidence_from_config(B, PipelineConfig(source="", compiled=""))
    assert judge_approval(A, B, [], ev).verdict is Verdict.UNKNOWN
    assert judge_approval(A, "", [], None).verdict is Verdict.UNKNOWN


def test_sweep_needs_every_record_to_carry_the_held_id() -> None:
    # Why: a contributor pipeline records someone else's finished B to get released.
    forged = {B: evidence_from_config(B, compiled(OTHER))}
    assert judge_sweep(A, [record(B)], forged).verdict is Verdict.CONTRADICTED
    honest = {B: evidence_from_config(B, compiled(A))}
    assert judge_sweep(A, [record(B)], honest).proven
    assert judge_sweep(A, [], honest).verdict is Verdict.UNKNOWN
    assert judge_sweep(A, [record(B)], {}).verdict is Verdict.UNKNOWN


def test_parameters_read_back_or_contradicted() -> None:
    ev = evidence_from_config(B, compiled(A, who="staging"))
    assert check_parameters(ev, {"requested-by": "staging"}).matches
    prod = check_parameters(ev, {"requested-by": "prod"})
    assert prod.contradicted == ("requested-by",)
    # Not used by the config: cannot be read back either way.
    assert check_parameters(ev, {"unused": "x"}).unverifiable == ("unused",)
    # A value YAML may quote or escape is never taken as contradicted.
    assert check_parameters(ev, {"requested-by": "a b"}).unverifiable == ("requested-by",)


def test_a_value_inside_a_longer_word_does_not_count() -> None:
    ev = evidence_from_config(B, compiled(A, who="production"))
    assert check_parameters(ev, {"requested-by": "prod"}).contradicted == ("requested-by",)


def test_a_compiled_config_without_substituted_values_proves_nothing() -> None:
    # If CircleCI ever returned `compiled` with the parameters left as placeholders, the
    # evidence is unreadable (nothing released, nothing adopted), never "does not carry".
    config = PipelineConfig(
        source=SOURCE, compiled="env: << pipeline.parameters.triggering-pipeline-id >>\n"
    )
    ev = evidence_from_config(B, config)
    assert not ev.readable
    assert "unsubstituted" in ev.why
    assert judge_approval(A, B, [], ev).verdict is Verdict.UNKNOWN
