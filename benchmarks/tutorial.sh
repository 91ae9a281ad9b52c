#!/bin/bash
# The tutorial's three calls (CircleCI blog, "Advanced pipeline orchestration with the
# circleback pattern"; /work/shared/seeds/001_362cc1f0398bc74d.txt), as written there, so
# that circleback is compared with exactly what it replaces. The only edits: the host is
# $CIRCLECI_HOST (the emulator) instead of https://circleci.com, the project is $PROJECT_B,
# and CircleCI's << pipeline.id >> / << pipeline.parameters.triggering-pipeline-id >> are
# $PIPELINE_ID / $TRIGGERING_PIPELINE_ID; ~/workspace is $WORKSPACE.
# Run it as CircleCI runs a step: bash -eo pipefail tutorial.sh trigger|approve|status
case "$1" in
trigger)
  CREATED_PIPELINE=$(curl --request POST \
    --url "$CIRCLECI_HOST/api/v2/project/$PROJECT_B/pipeline" \
    --header "Circle-Token: $CIRCLECI_API_KEY" \
    --header "content-type: application/json" \
    --data '{"branch":"main","parameters":{"triggering-pipeline-id":"'"$PIPELINE_ID"'"}}' \
    | jq -r '.id'
  )
  echo "my created pipeline"
  echo $CREATED_PIPELINE
  mkdir -p "$WORKSPACE"
  echo $CREATED_PIPELINE > "$WORKSPACE/pipeline.txt"
  ;;
approve)
  echo "$TRIGGERING_PIPELINE_ID"
  if ! [ -z "$TRIGGERING_PIPELINE_ID" ]
  then
    workflow_id=$(curl --request GET \
      --url "$CIRCLECI_HOST/api/v2/pipeline/$TRIGGERING_PIPELINE_ID/workflow" \
      --header "Circle-Token: $CIRCLECI_API_KEY" \
      --header "content-type: application/json" \
      | jq -r '.items[0].id')
    echo $workflow_id
    waiting_job_id=$(curl --request GET \
      --url "$CIRCLECI_HOST/api/v2/workflow/$workflow_id/job" \
      --header "Circle-Token: $CIRCLECI_API_KEY" \
      --header "content-type: application/json" \
      | jq -r '.items[] | select(.name == "wait-for-triggered-pipeline").id')
    echo $waiting_job_id
    curl --request POST \
      --url "$CIRCLECI_HOST/api/v2/workflow/$workflow_id/approve/$waiting_job_id" \
      --header "Circle-Token: $CIRCLECI_API_KEY" \
      --header "content-type: application/json"
  fi
  ;;
status)
  triggered_pipeline_id=$(cat "$WORKSPACE/pipeline.txt")
  created_workflow_status=$(curl --request GET \
    --url "$CIRCLECI_HOST/api/v2/pipeline/${triggered_pipeline_id}/workflow" \
    --header "Circle-Token: $CIRCLECI_API_KEY" \
    --header "content-type: application/json" \
    | jq -r '.items[0].status'
  )
  if [[ "$created_workflow_status" != "success" ]]; then
    echo "Workflow not successful - ${created_workflow_status}"
    (exit -1)
  fi
  echo "Created workflow successful"
  ;;
*)
  echo "usage: tutorial.sh trigger|approve|status" >&2
  exit 2
  ;;
esac
