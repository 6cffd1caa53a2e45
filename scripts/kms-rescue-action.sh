#!/usr/bin/env bash
# The GitHub Action's logic (action.yml calls it): run kms-rescue lint once for SARIF and once for the log, and
# record the exit status for the action's last step, so that the SARIF upload runs before the step fails.
#
# Inputs come from the environment (never interpolated into this script): KMS_RESCUE_PATHS (space/newline
# separated), KMS_RESCUE_ACCOUNT, KMS_RESCUE_REGION, KMS_RESCUE_FAIL_ON, KMS_RESCUE_SOFT_FAIL (true/false),
# KMS_RESCUE_SKIP_RULES (space/comma separated), KMS_RESCUE_BASELINE, KMS_RESCUE_SARIF_FILE. GitHub's own:
# GITHUB_WORKSPACE (the repository root SARIF URIs are relative to), GITHUB_OUTPUT, GITHUB_STEP_SUMMARY.
# KMS_RESCUE (default: kms-rescue) is the command to run. This script always exits 0 unless it is misused.
set -uo pipefail

kms_rescue=${KMS_RESCUE:-kms-rescue}
sarif=${KMS_RESCUE_SARIF_FILE:-kms-rescue.sarif}
root=${GITHUB_WORKSPACE:-$PWD}
output=${GITHUB_OUTPUT:-/dev/null}

read -r -d '' -a paths <<<"${KMS_RESCUE_PATHS:-.}"
args=(--account "${KMS_RESCUE_ACCOUNT:-}" --region "${KMS_RESCUE_REGION:-us-east-1}"
      --fail-on "${KMS_RESCUE_FAIL_ON:-high}" --repo-root "$root")
skip_rules=${KMS_RESCUE_SKIP_RULES:-}
for rule in ${skip_rules//,/ }; do
  args+=(--skip-rule "$rule")
done
if [[ -n "${KMS_RESCUE_BASELINE:-}" ]]; then
  args+=(--baseline "$KMS_RESCUE_BASELINE")
fi
case "${KMS_RESCUE_SOFT_FAIL:-false}" in
  true) args+=(--soft-fail) ;;
  false|"") ;;
  *) echo "::error::soft-fail must be true or false, not '${KMS_RESCUE_SOFT_FAIL}'"; echo "exit-code=2" >>"$output"; exit 0 ;;
esac

if [[ -e "$sarif" ]]; then
  echo "::error::sarif-file $sarif exists already; not overwriting it"
  echo "exit-code=2" >>"$output"
  exit 0
fi

mkdir -p -- "$(dirname -- "$sarif")"

# The SARIF run decides the status; the text run only shows the findings in the log (and the job summary).
"$kms_rescue" lint "${paths[@]}" "${args[@]}" --format sarif --output "$sarif"
status=$?
report=$("$kms_rescue" lint "${paths[@]}" "${args[@]}" --format text 2>&1)
printf '%s\n' "$report"

if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  {
    echo "### kms-rescue lint: exit status $status"
    echo
    echo '```text'
    printf '%s\n' "$report"
    echo '```'
  } >>"$GITHUB_STEP_SUMMARY"
fi

echo "exit-code=$status" >>"$output"
if [[ -s "$sarif" ]]; then
  echo "sarif-file=$sarif" >>"$output"
fi
exit 0
